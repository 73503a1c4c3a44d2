import pytest

from macs_bench.datasets import build
from macs_bench.datasets.metadata import MetadataStore, read_json, read_table
from macs_bench.errors import MetadataError


def test_vendored_metadata_verifies():
    store = MetadataStore()
    sums = store.verify(sorted(store.pinned))
    assert len(sums) == 13 and sums == store.pinned


def test_tampered_file_is_refused(metadata_copy):
    target = metadata_copy / "avvp" / "AVVP_dataset_full.csv"
    data = bytearray(target.read_bytes())
    data[100] ^= 1  # one bit
    target.write_bytes(bytes(data))
    with pytest.raises(MetadataError, match=rf"^{target}: sha256 .* does not match the pinned"):
        build("llp-multi", metadata_dir=metadata_copy)
    # datasets that do not read the file still build
    assert len(build("landscape", metadata_dir=metadata_copy)) == 1000


def test_resummed_vendored_copy_is_refused(metadata_copy, monkeypatch):
    """Editing a vendored file together with its SHA256SUMS line is caught by the pin in the code."""
    import hashlib

    from macs_bench.datasets import metadata

    target = metadata_copy / "macs" / "Landscape.csv"
    target.write_text(target.read_text().replace("explosion", "explosiom"))
    sums = metadata_copy / "SHA256SUMS"
    lines = [
        f"{hashlib.sha256(target.read_bytes()).hexdigest()}  macs/Landscape.csv" if "Landscape" in line else line
        for line in sums.read_text().splitlines()
    ]
    sums.write_text("\n".join(lines) + "\n")
    monkeypatch.setattr(metadata, "datasets_root", lambda: metadata_copy.parent)
    with pytest.raises(MetadataError, match=rf"^{sums}: does not match the checksum pinned in macs_bench"):
        build("landscape")


def test_missing_metadata_dir(tmp_path):
    with pytest.raises(MetadataError, match="metadata folder does not exist"):
        build("landscape", metadata_dir=tmp_path / "nope")


def test_missing_file_is_refused(metadata_copy):
    (metadata_copy / "macs" / "Landscape.csv").unlink()
    with pytest.raises(MetadataError, match="Landscape.csv: metadata file is missing"):
        build("landscape", metadata_dir=metadata_copy)


def test_read_table_quoting_error(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text('a,b\n1,"x"y\n')
    with pytest.raises(MetadataError, match=rf"^{path}:2: "):
        list(read_table(path, ("a", "b")))


def test_read_table_empty(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("")
    with pytest.raises(MetadataError, match="empty file"):
        list(read_table(path, ("a", "b")))


def test_read_json_error_names_line(tmp_path):
    path = tmp_path / "t.json"
    path.write_text('{"a": [1, 2],\n "b": [1,, 2]}')
    with pytest.raises(MetadataError, match=rf"^{path}:2: invalid JSON"):
        read_json(path)


def test_cards_list_exactly_the_files_each_builder_reads():
    import re

    from macs_bench.datasets import DATASETS, card

    pinned = MetadataStore().pinned
    for name, spec in DATASETS.items():
        text = card(name)
        files_section = text.split("## Files", 1)[1].split("\n## ", 1)[0]
        listed = dict(re.findall(r"^\| ([\w./-]+) \| ([0-9a-f]{64}) \|$", files_section, flags=re.M))
        assert listed == {f: pinned[f] for f in spec.files}, name
        for section in ("## Source", "## Licence", "## Counts", "## Known defects"):
            assert section in text, (name, section)
