"""The one seeded-randomness module (proactivebench/seeding.py): streams keyed by what they are for, and pinned,
since the builders' streams decide published dataset bytes and the evaluator's decide results."""

import hashlib
import random

from proactivebench.seeding import numpy_rng, rng_for, stable_int, stable_unit


def test_streams_depend_on_the_key_only():
    assert rng_for(7, "rod", 3).random() == rng_for(7, "rod", "3").random()  # parts by their text
    assert rng_for(7, "rod", 3).random() != rng_for(8, "rod", 3).random()
    assert rng_for(7, "rod", 3).random() != rng_for(7, "rod", 4).random()
    assert rng_for(7, "a", hashed=True).random() != rng_for(7, "a").random()
    assert list(numpy_rng(1, "run", "ds").integers(0, 10**6, 4)) == list(numpy_rng(1, "run", "ds").integers(0, 10**6, 4))
    assert 0 <= stable_unit("anything") < 1


def test_builder_stream_is_random_seeded_with_the_key_text():
    # Changing this derivation changes every built dataset's bytes.
    assert rng_for(7, "rod", "x").getstate() == random.Random("7\x1frod\x1fx").getstate()
    assert rng_for(7, "rod", "x").random() == 0.39011501580704877


def test_evaluator_stream_is_random_seeded_with_sha256_of_the_key():
    # Changing this derivation changes the shots, ablated options and baseline answers of every run.
    digest = hashlib.sha256(b"7/shots/coco-000001").digest()
    assert stable_int(7, "shots", "coco-000001") == int.from_bytes(digest[:8], "big")
    assert rng_for(7, "shots", "coco-000001", hashed=True).getstate() == random.Random(
        int.from_bytes(digest[:8], "big")).getstate()
    assert rng_for(7, "shots", "coco-000001", hashed=True).random() == 0.08279203472228513
    assert stable_unit("latencyhello") == int.from_bytes(hashlib.sha256(b"latencyhello").digest()[:8], "big") / 2**64


def test_numpy_stream_is_seeded_with_the_seed_and_the_key_bytes():
    import numpy as np

    expected = np.random.default_rng([0, *b"run\0ds"]).integers(0, 1000, 3)
    assert list(numpy_rng(0, "run", "ds").integers(0, 1000, 3)) == list(expected) == [111, 169, 437]
