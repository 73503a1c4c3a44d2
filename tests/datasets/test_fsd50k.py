import pytest

from macs_bench.datasets import build
from macs_bench.datasets.fsd50k import clap_prompts, read_collection
from macs_bench.datasets.metadata import datasets_root
from macs_bench.datasets.ontology import Ontology
from macs_bench.errors import MetadataError


def test_counts(manifests):
    m = manifests("fsd50k")
    counts = m.counts()
    assert counts["splits"] == {"dev": 40966 - 110, "eval": 10231}
    assert m.stats["label_processing"]["clips_without_labels_dropped"] == {"dev": 110, "eval": 0}
    assert max(s.n_labels for s in m.samples) == 6


def test_label_processing(manifests):
    ontology = Ontology.load(datasets_root() / "metadata" / "audioset" / "ontology.json")
    m = manifests("fsd50k")
    for s in m.samples:
        for mid in s.mids:
            assert not ontology.ancestors(mid) & set(s.mids), s.sample_id  # no parent kept beside its child
        prompts = dict(s.extra)["prompts"].split(";")
        assert len(prompts) == 6
        assert prompts[: s.n_labels] == [f"The sound of {label}" for label in s.labels]
        assert prompts[s.n_labels :] == ["Noise"] * (6 - s.n_labels)


def test_parent_dropped_example():
    ontology = Ontology.load(datasets_root() / "metadata" / "audioset" / "ontology.json")
    # Electric guitar (/m/02sgy) is a descendant of Guitar (/m/0342h) and Music (/m/04rlf)
    assert ontology.drop_ancestors(["/m/02sgy", "/m/0342h", "/m/04rlf"]) == ["/m/02sgy"]
    assert ontology.drop_ancestors(["/m/0342h", "/m/09x0r"]) == ["/m/0342h", "/m/09x0r"]


def test_num_sources_option():
    m = build("fsd50k", num_sources=2)
    assert max(s.n_labels for s in m.samples) == 2
    assert m.provenance["options"] == {"num_sources": 2}
    assert clap_prompts(["Dog"], 3) == ["The sound of Dog", "Noise", "Noise"]


def test_malformed_collection_row(tmp_path):
    path = tmp_path / "collection.csv"
    path.write_text('fname,labels,mids\n1,Dog,/m/0bt9lr\n2,"Dog,Cat",/m/0bt9lr\n')
    with pytest.raises(MetadataError, match=rf"^{path}:3: 2 labels but 1 MIDs$"):
        read_collection(path)
