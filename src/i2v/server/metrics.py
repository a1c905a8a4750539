"""``GET /metrics``: the job store's numbers in Prometheus' text exposition format (version 0.0.4)."""

from __future__ import annotations

from .store import STATES, JobStore

DURATION_BUCKETS = (0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600, 1800, 3600)


def render_metrics(store: JobStore) -> str:
    counts = store.counts()
    durations = store.durations()
    lines = [
        "# HELP i2v_queue_depth Jobs waiting for a worker.",
        "# TYPE i2v_queue_depth gauge",
        f"i2v_queue_depth {counts['queued']}",
        "# HELP i2v_jobs Jobs in the store by state.",
        "# TYPE i2v_jobs gauge",
        *(f'i2v_jobs{{state="{state}"}} {counts[state]}' for state in STATES),
        "# HELP i2v_generation_seconds Seconds from a job's start to its video, succeeded jobs.",
        "# TYPE i2v_generation_seconds histogram",
    ]
    for bound in DURATION_BUCKETS:
        lines.append(f'i2v_generation_seconds_bucket{{le="{bound:g}"}} {sum(d <= bound for d in durations)}')
    lines += [f'i2v_generation_seconds_bucket{{le="+Inf"}} {len(durations)}',
              f"i2v_generation_seconds_sum {sum(durations):.6f}",
              f"i2v_generation_seconds_count {len(durations)}",
              "# HELP i2v_worker_busy_seconds_total Seconds workers spent on succeeded jobs.",
              "# TYPE i2v_worker_busy_seconds_total counter",
              f"i2v_worker_busy_seconds_total {sum(durations):.6f}"]
    return "\n".join(lines) + "\n"
