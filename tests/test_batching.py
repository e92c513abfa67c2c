from ee_asr.data.batching import epoch_batches, make_batches


def test_batches_respect_padded_frame_budget_and_cover_everything():
    lengths = {f"u{i:02d}": 50 + 7 * i for i in range(40)}
    batches = make_batches(lengths, batch_bins=1000)
    assert sorted(u for b in batches for u in b) == sorted(lengths)
    for b in batches:
        assert len(b) == 1 or max(lengths[u] for u in b) * len(b) <= 1000


def test_every_rank_gets_the_same_number_of_distinct_batches():
    batches = [[f"u{i}"] for i in range(11)]
    r0 = epoch_batches(batches, epoch=3, seed=1, rank=0, world_size=2)
    r1 = epoch_batches(batches, epoch=3, seed=1, rank=1, world_size=2)
    assert len(r0) == len(r1) == 5 and not set(map(tuple, r0)) & set(map(tuple, r1))
    assert epoch_batches(batches, 3, 1) == epoch_batches(batches, 3, 1)
    assert epoch_batches(batches, 3, 1) != epoch_batches(batches, 4, 1)
