"""Transfers of EHC plans between councils, estimated from SEN2."""

import numpy as np
import pandas as pd
import pytest

from simsend.data import DataSpec, load_baseline
from simsend.data.baseline import builtin_paths
from simsend.data.transfers import transfer_rates


@pytest.fixture(scope="module")
def councils():
    return load_baseline(DataSpec(areas=("all",), baseline_year=2022))


def test_rates_are_transfers_over_plans_by_hand(councils):
    flows = pd.read_csv(builtin_paths()["flows"], dtype={"area": str})
    stock = pd.read_csv(builtin_paths()["stock"], dtype={"area": str})
    tr = transfer_rates(councils, recent=3)
    assert tr.years == (2019, 2020, 2021)

    def rate(code):
        f = flows[(flows["flow"] == "ceased_moved_la") & (flows["area"] == code)
                  & flows["year"].between(2019, 2021) & (flows["age_group"] == "all")
                  & (flows["placement"] == "all")]
        s = stock[(stock["plan"] == "ehcp") & (stock["area"] == code)
                  & stock["year"].between(2019, 2021) & (stock["age_group"] == "all")
                  & (stock["placement"] == "all")]
        return f["count"].sum() / s["count"].sum()

    i = councils.areas.index("E08000025")  # Birmingham
    assert tr.out_rate[i] == pytest.approx(rate("E08000025"), rel=1e-12)
    assert tr.in_rate[i] == pytest.approx(rate("E92000001"), rel=1e-12)
    assert 0.005 < tr.in_rate[i] < 0.05  # England: 1-2% of plans a year


def test_all_councils_conserve_transfers_in_expectation(councils):
    tr = transfer_rates(councils, recent=3)
    plans = councils.individuals[3].sum(axis=(0, 1, 3))
    out, inn = (tr.out_rate * plans).sum(), (tr.in_rate * plans).sum()
    # in at England's rate per plan: arrivals add up to the transfers out (what leaves one
    # council arrives in the others), up to the mix of years and councils in the pooled rate
    assert inn == pytest.approx(out, rel=0.03)
    assert (tr.out_rate > 0).sum() > 140


def test_no_transfers_for_england_and_regions():
    b = load_baseline(DataSpec(areas=("E92000001", "E12000005"), baseline_year=2022))
    tr = transfer_rates(b)
    np.testing.assert_array_equal(tr.out_rate, 0.0)
    np.testing.assert_array_equal(tr.in_rate, 0.0)
