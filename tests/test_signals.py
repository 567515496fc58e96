import numpy as np
import pytest

from nexttoken.signals import FAMILIES, generate, mixture, read_csv, write_csv


@pytest.mark.parametrize("family", FAMILIES)
def test_every_family_is_seeded_finite_and_varied(family):
    a = generate(family, 4, 300, seed=7)
    b = generate(family, 4, 300, seed=7)
    c = generate(family, 4, 300, seed=8)
    assert a.shape == (4, 300)
    assert np.isfinite(a).all()
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)
    assert (a.std(axis=1) > 1e-3).all(), "a series is flat"


def test_families_do_not_share_streams():
    # Adding or drawing one family must not change another's series.
    alone = generate("duffing", 3, 100, seed=1)
    mixed, labels = mixture(["sine", "duffing"], 6, 100, seed=1)
    np.testing.assert_array_equal(mixed[3:], alone)
    assert labels == ["sine"] * 3 + ["duffing"] * 3


def test_noise_is_relative_to_the_series_std():
    clean = generate("single_sine", 8, 2000, seed=3)
    noisy = generate("single_sine", 8, 2000, seed=3, noise=0.1)
    ratio = (noisy - clean).std(axis=1) / clean.std(axis=1)
    np.testing.assert_allclose(ratio, 0.1, rtol=0.1)


def test_van_der_pol_is_a_relaxation_oscillation():
    x = generate("van_der_pol", 2, 600, seed=0)
    # On the limit cycle the signal keeps oscillating: it crosses zero many times.
    crossings = (np.diff(np.sign(x), axis=1) != 0).sum(axis=1)
    assert (crossings >= 10).all()


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="unknown oscillator family 'sinus'"):
        generate("sinus", 1, 10)
    with pytest.raises(ValueError, match="noise"):
        generate("sine", 1, 10, noise=-1)


def test_csv_round_trip_with_missing_values(tmp_path):
    series = {"a": np.array([1.0, np.nan, 3.5]), "b,c": np.array([0.25, 2.0, np.nan])}
    write_csv(tmp_path / "x.csv", series)
    back = read_csv(tmp_path / "x.csv")
    assert list(back) == ["a", "b,c"]
    np.testing.assert_array_equal(back["a"], series["a"])
    np.testing.assert_array_equal(back["b,c"], series["b,c"])


def test_csv_errors_say_where(tmp_path):
    p = tmp_path / "bad.csv"
    p.write_text("x,y\n1,2\n3,abc\n")
    with pytest.raises(ValueError, match=r"row 3, column 'y': 'abc' is not a number"):
        read_csv(p)
    p.write_text("")
    with pytest.raises(ValueError, match="empty"):
        read_csv(p)
    with pytest.raises(FileNotFoundError, match="no such CSV file"):
        read_csv(tmp_path / "missing.csv")
    p.write_text("x,x\n1,2\n")
    with pytest.raises(ValueError, match="duplicate"):
        read_csv(p)
