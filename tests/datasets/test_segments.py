import pytest

from macs_bench.datasets.segments import is_ytid, normalise_seconds, parse_segment, sample_id


@pytest.mark.parametrize(
    "name, expected",
    [
        ("BjCEufrlXm4_20_30", ("BjCEufrlXm4", "20", "30")),
        ("--4gqARaEJE_0_10", ("--4gqARaEJE", "0", "10")),
        ("a_b_c_d_e_f_30_40", ("a_b_c_d_e_f", "30", "40")),
        ("-_-_-_-_-_-_1_11", ("-_-_-_-_-_-", "1", "11")),
        ("AP0061o0Nvk_101.8_111.8", ("AP0061o0Nvk", "101.8", "111.8")),
        ("AP0061o0Nvk_101.800_111.8", ("AP0061o0Nvk", "101.8", "111.8")),
    ],
)
def test_parse_segment(name, expected):
    assert parse_segment(name) == expected
    assert sample_id(*expected) == name.replace("101.800", "101.8")


def test_parse_segment_hash_separator():
    assert parse_segment("00wUFSUwR-g#373#383", sep="#") == ("00wUFSUwR-g", "373", "383")


@pytest.mark.parametrize(
    "bad, reason",
    [
        ("BjCEufrlXm4_20", "expected"),
        ("short_20_30", "invalid YouTube id"),
        ("BjCEufrlXm4!_20_30", "invalid YouTube id"),
        ("BjCEufrlX m4_20_30", "invalid YouTube id"),
        ("BjCEufrlXm4_x_30", "not a number"),
        ("BjCEufrlXm4_30_20", "not after"),
        ("BjCEufrlXm4_-5_20", "not a time"),
        ("BjCEufrlXm4_nan_20", "not a time"),
    ],
)
def test_parse_segment_rejects(bad, reason):
    with pytest.raises(ValueError, match=reason):
        parse_segment(bad)


def test_normalise_seconds_is_exact():
    assert normalise_seconds("30.000") == "30"
    assert normalise_seconds("0.000") == "0"
    assert normalise_seconds("417.300") == "417.3"
    assert normalise_seconds("100") == "100"
    assert normalise_seconds("1E+2") == "100"


def test_is_ytid():
    assert is_ytid("-BfvyPmVMo_") and is_ytid("___________")
    assert not is_ytid("-BfvyPmVMo") and not is_ytid("-BfvyPmVMo__")
