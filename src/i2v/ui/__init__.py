"""The web UI (Gradio) mounted on ``i2v serve``: Generate and History over the server's job queue."""
