from i2v.world.photos.splits import assign_splits, heldout_count


def test_heldout_count_is_about_an_eighth_with_a_few_from_small_sources():
    assert [heldout_count(n) for n in (0, 1, 2, 3)] == [0, 0, 0, 0]
    assert [heldout_count(n) for n in (4, 7, 8, 10, 16)] == [1, 1, 2, 2, 2]
    assert heldout_count(40) == 5 and heldout_count(100) == 13


def test_split_is_deterministic_and_independent_of_order():
    groups = [("src-a", f"pic{i}") for i in range(30)] + [("src-b", f"pic{i}") for i in range(9)]
    a = assign_splits(groups)
    b = assign_splits(list(reversed(groups)) + groups[:5])  # repeats and order do not matter
    assert a == b
    held = [g for g, s in a.items() if s == "heldout"]
    assert sum(g[0] == "src-a" for g in held) == 4 and sum(g[0] == "src-b" for g in held) == 2


def test_adding_a_picture_moves_at_most_one_group():
    groups = [("src", f"pic{i}") for i in range(20)]
    before = assign_splits(groups)
    after = assign_splits(groups + [("src", "new")])
    moved = [g for g in before if before[g] != after[g]]
    assert len(moved) <= 1
