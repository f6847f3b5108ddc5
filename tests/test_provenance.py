"""Run manifests: hashes, versions, git state and times."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from phm_eval import provenance

# SHA-256 test vector from FIPS 180-2, appendix B.1.
ABC_SHA256 = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"


def test_hash_file_matches_known_vector_and_streams(tmp_path):
    small = tmp_path / "abc.txt"
    small.write_bytes(b"abc")
    assert provenance.hash_file(small) == ABC_SHA256
    big = tmp_path / "big.bin"
    data = np.random.default_rng(1).bytes(3_000_001)
    big.write_bytes(data)
    expected = hashlib.sha256(data).hexdigest()
    assert provenance.hash_file(big, chunk_size=4096) == expected
    assert provenance.hash_file(big) == expected


def test_package_versions_lists_the_stack():
    versions = provenance.package_versions()
    for name in ["python", "phm-eval", "numpy", "pandas", "scipy", "statsmodels",
                 "scikit-learn", "lifelines", "duckdb", "snakemake", "matplotlib"]:
        assert name in versions
    assert versions["numpy"] == np.__version__
    assert provenance.package_versions(["surely-not-installed-pkg"])[
        "surely-not-installed-pkg"] is None


def test_write_manifest(tmp_path):
    data = tmp_path / "inputs"
    (data / "sub").mkdir(parents=True)
    (data / "patients.csv").write_bytes(b"abc")
    (data / "sub" / "events.csv").write_bytes(b"")
    config = {"seed": 7, "index_date": dt.date(2024, 4, 1), "paths": [Path("a/b")]}
    started = dt.datetime(2024, 6, 1, 10, 30, tzinfo=dt.timezone(dt.timedelta(hours=1)))
    finished = "2024-06-01T09:45:10Z"
    written = provenance.write_manifest(
        tmp_path / "out" / "manifest.json", config, [data, tmp_path / "absent.csv"],
        seed=7, started_at=started, finished_at=finished, extra={"rows": np.int64(5)},
        repo_dir=tmp_path,
    )
    on_disk = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert on_disk == written
    assert written["started_at"] == "2024-06-01T09:30:00Z"  # 10:30 at UTC+1
    assert written["finished_at"] == "2024-06-01T09:45:10Z"
    assert written["duration_seconds"] == 910.0
    assert written["seed"] == 7
    assert written["config"] == {"seed": 7, "index_date": "2024-04-01", "paths": ["a/b"]}
    assert written["extra"] == {"rows": 5}
    hashes = {Path(i["path"]).name: i["sha256"] for i in written["inputs"]}
    assert hashes == {
        "patients.csv": ABC_SHA256,
        "events.csv": hashlib.sha256(b"").hexdigest(),
        "absent.csv": None,
    }
    assert written["inputs"][-1]["missing"] is True
    assert written["git"] is None  # tmp_path is not a git work tree
    assert written["packages"]["pandas"]
    assert written["platform"]["system"]
    assert not (tmp_path / "out" / "manifest.json.tmp").exists()


def test_naive_times_are_utc_and_finished_defaults_to_now(tmp_path):
    before = dt.datetime.now(dt.UTC).replace(microsecond=0)
    manifest = provenance.build_manifest({}, [], seed=None,
                                         started_at=dt.datetime(2024, 1, 1, 0, 0), repo_dir=tmp_path)
    assert manifest["started_at"] == "2024-01-01T00:00:00Z"
    finished = dt.datetime.fromisoformat(manifest["finished_at"].replace("Z", "+00:00"))
    assert before <= finished <= dt.datetime.now(dt.UTC)


@pytest.mark.skipif(shutil.which("git") is None, reason="git not installed")
def test_git_commit_and_dirty_flag(tmp_path):
    def git(*args):
        subprocess.run(["git", *args], cwd=tmp_path, check=True, capture_output=True)

    git("init", "-q")
    (tmp_path / "f.txt").write_text("one\n")
    git("add", "f.txt")
    git("-c", "user.name=t", "-c", "user.email=t@example.org", "commit", "-q", "-m", "one")
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=tmp_path, capture_output=True,
                          text=True, check=True).stdout.strip()
    (tmp_path / "untracked.txt").write_text("x")
    assert provenance.git_info(tmp_path) == {"commit": head, "dirty": False}
    (tmp_path / "f.txt").write_text("two\n")
    assert provenance.git_info(tmp_path) == {"commit": head, "dirty": True}
