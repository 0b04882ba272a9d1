"""Raw-file fetching: mirror copy, upstream URL, checksum verification, nothing half-written."""

from __future__ import annotations

import pytest

from llmrecbench.data.download import fetch_file, sha256_file
from llmrecbench.errors import ChecksumError, InputError

REL = "movielens-100k/ml-100k.user"
SHA = "4f670007d9cfbeb9807e757209af1555b9bcc186bde25e767f67cb67c6dd5972"


def test_mirror_copy_verified(tmp_path, mirror_dir):
    dest = tmp_path / "raw" / "ml-100k.user"
    rec = fetch_file(dest, url=None, sha256=SHA, mirror_file=mirror_dir / REL)
    assert rec["source"] == "mirror" and rec["sha256"] == SHA == sha256_file(dest)


def test_checksum_mismatch_leaves_nothing(tmp_path, mirror_dir):
    dest = tmp_path / "ml-100k.user"
    with pytest.raises(ChecksumError, match="sha256 mismatch") as exc:
        fetch_file(dest, url=None, sha256="0" * 64, mirror_file=mirror_dir / REL)
    assert "ml-100k.user" in str(exc.value) and "\n" not in str(exc.value)
    assert list(tmp_path.iterdir()) == []


def test_url_download(tmp_path, mirror_dir):
    dest = tmp_path / "ml-100k.user"
    rec = fetch_file(dest, url=(mirror_dir / REL).as_uri(), sha256=SHA, mirror_file=None)
    assert rec["source"] == "url" and dest.read_bytes() == (mirror_dir / REL).read_bytes()


def test_missing_mirror_file_and_no_url(tmp_path):
    with pytest.raises(InputError, match="no upstream URL"):
        fetch_file(tmp_path / "x", url=None, sha256=None, mirror_file=tmp_path / "nope")


def test_mirror_missing_falls_back_to_url(tmp_path, mirror_dir):
    rec = fetch_file(tmp_path / "x", url=(mirror_dir / REL).as_uri(), sha256=SHA, mirror_file=tmp_path / "absent")
    assert rec["source"] == "url"


def test_empty_download_rejected(tmp_path):
    empty = tmp_path / "empty.txt"
    empty.write_bytes(b"")
    with pytest.raises(InputError, match="empty file"):
        fetch_file(tmp_path / "dest.txt", url=empty.as_uri(), sha256=None, mirror_file=None)
    assert not (tmp_path / "dest.txt").exists()


def test_unreachable_url_is_one_line(tmp_path):
    with pytest.raises(InputError, match="download of") as exc:
        fetch_file(tmp_path / "d", url="http://127.0.0.1:9/nothing", sha256=None, mirror_file=None, timeout=2)
    assert "\n" not in str(exc.value)
