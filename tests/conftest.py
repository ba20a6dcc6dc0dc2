import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import pytest  # noqa: E402


@pytest.fixture(autouse=True)
def _fresh_datasets_cache(tmp_path, monkeypatch):
    """`load_dataset` caches by path: every test gets its own cache."""
    import datasets.config

    cache = tmp_path / "hf-datasets-cache"
    monkeypatch.setenv("HF_DATASETS_CACHE", str(cache))
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", cache)


@pytest.fixture(scope="session")
def release_dir(tmp_path_factory):
    from proactivebench.samples.release import write_sample_release

    return write_sample_release(tmp_path_factory.mktemp("release") / "test")


@pytest.fixture(scope="session")
def imported_dir(release_dir, tmp_path_factory):
    from proactivebench.builders.official import import_official

    out = tmp_path_factory.mktemp("imported") / "bench"
    import_official(release_dir, out)
    return out


@pytest.fixture(scope="session")
def imported_rows(imported_dir):
    """{sample_id: row} over every split, frames undecoded."""
    from proactivebench.store import iter_rows

    rows = {}
    for split in ("test", "excluded"):
        for row in iter_rows(imported_dir, split=split):
            rows[row["sample_id"]] = row
    return rows


@pytest.fixture(scope="session")
def tiny_llava_dir(tmp_path_factory):
    """A tiny random-weight LLaVA checkpoint folder (proactivebench.samples.tiny_models)."""
    from proactivebench.samples.tiny_models import build_tiny_llava

    return build_tiny_llava(tmp_path_factory.mktemp("tiny-llava"))


@pytest.fixture(scope="session")
def tiny_qwen_dir(tmp_path_factory):
    """A tiny random-weight Qwen2.5-VL checkpoint folder (proactivebench.samples.tiny_models)."""
    from proactivebench.samples.tiny_models import build_tiny_qwen2_5_vl

    return build_tiny_qwen2_5_vl(tmp_path_factory.mktemp("tiny-qwen"))


@pytest.fixture
def one_torch_thread():
    """The shared 2-core CPU: torch's spinning intra-op threads make tiny models ~10x slower under load."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
