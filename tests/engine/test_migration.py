"""Engine with demography: births, migration and plan transfers, against exact expectations."""

import dataclasses

import numpy as np

from simsend.engine.loop import Job, simulate
from simsend.engine.tally import FLOW, make_layout
from simsend.rates.demography import DemographySource, year_moves
from simsend.testing import expected_counts

N_YEARS = 5


class KnownDemography:
    """Births and net rates fixed in advance (a known truth), the same for every draw."""

    def __init__(self, n_areas, seed=0):
        rng = np.random.default_rng(seed)
        self.births = rng.integers(1500, 2500, size=(N_YEARS - 1, n_areas)).astype(float)
        self.net_rate = self.net = rng.uniform(-0.15, 0.35, size=(N_YEARS - 1, 26, n_areas))
        self.net[:, 0] = 0.0

    def draw(self, draw, seed):
        return self


def _run(toy, demography, draws):
    ind, pool, births, src = toy
    layout = make_layout(("tier", "area"), ("A", "B"))
    job = Job(ind, pool, N_YEARS, 42, layout, demography=demography)
    return simulate(job, src, draws), layout


def test_mean_matches_expected_counts_with_migration_and_transfers(toy):
    ind, pool, births, src = toy
    model = KnownDemography(2)
    t_out, t_in = np.array([0.05, 0.02]), np.array([0.03, 0.03])
    demo = DemographySource(model, 42, t_out, t_in)
    out, layout = _run(toy, demo, range(200))
    sim = out.stock.reshape(200, N_YEARS, 4, 2).sum(axis=3).astype(float)
    moves = year_moves(model.births, model.net, t_out, t_in)
    exp = expected_counts(ind, pool, src.get(0), N_YEARS, moves)
    np.testing.assert_allclose(sim[0, 0], exp[0])
    mean = sim.mean(axis=0)
    se = sim.std(axis=0, ddof=1) / np.sqrt(len(sim))
    z = (mean - exp) / np.where(se > 0, se, np.inf)
    assert np.abs(z[1:]).max() < 4.5, z
    # without migration the same run is far off: the check can fail
    exp_none = expected_counts(ind, pool, src.get(0), N_YEARS)
    z0 = (mean - exp_none) / np.where(se > 0, se, np.inf)
    assert np.abs(z0[1:]).max() > 10
    # moves are tallied: arrivals and departures of every tier, transfers of plans
    fl = out.flows.reshape(200, N_YEARS, -1, 4, 2)
    assert fl[:, 1:, FLOW["n_moved_in"], 3].sum() > 0
    assert fl[:, 1:, FLOW["n_moved_out"], 3].sum() > 0
    assert (fl[:, 0, FLOW["n_moved_in"]] == 0).all()


def test_same_draw_same_result_and_chunked_areas_agree(toy):
    ind, pool, births, src = toy
    demo = DemographySource(KnownDemography(2), 42, np.array([0.05, 0.02]),
                            np.array([0.03, 0.03]))
    a, layout = _run(toy, demo, [3, 7])
    b, _ = _run(toy, demo, [7])
    np.testing.assert_array_equal(a.stock[1], b.stock[0])
    # area 1 run alone as a chunk of the run gives the run's numbers for it
    lay1 = make_layout(("tier", "area"), ("B",))
    job = Job(ind[..., 1:2, :], pool[:, 1:2], N_YEARS, 42, lay1, area_base=1, area_total=2,
              demography=demo.areas(1, 2))
    from simsend.runner.distributed import AreaSlice
    c = simulate(job, AreaSlice(src, 1, 2), [3, 7])
    whole = a.stock.reshape(2, N_YEARS, 4, 2)[..., 1]
    np.testing.assert_array_equal(c.stock.reshape(2, N_YEARS, 4), whole)


class Shocked:
    """The toy's fixed rates with a known net flow of individuals in every year."""

    def __init__(self, ps, net):
        self.ps = dataclasses.replace(ps, stock_shock=net)

    def get(self, draw):
        return self.ps


def _known_net(n_areas=2):
    """Net flows by (year, tier, age, area): plans in at A and out at B, SEN support out."""
    net = np.zeros((N_YEARS, 4, 26, n_areas))
    net[1:, 3, :, 0] = 0.10
    net[1:, 3, :, 1] = -0.20
    net[1:, 1:3] = -0.05
    return net


def test_net_flow_moves_the_expected_pupils_with_and_without_demography(toy):
    """A calibrated stock residual moves ``net`` of each cell in or out: exact expectations."""
    ind, pool, births, src = toy
    shocked = Shocked(src.get(0), _known_net())
    layout = make_layout(("tier", "area"), ("A", "B"))
    model = KnownDemography(2)
    for demo, moves in ((None, None),
                        (DemographySource(model, 42), year_moves(model.births, model.net,
                                                                 None, None))):
        out = simulate(Job(ind, pool, N_YEARS, 42, layout, demography=demo), shocked,
                       range(200))
        sim = out.stock.reshape(200, N_YEARS, 4, 2).sum(axis=3).astype(float)
        exp = expected_counts(ind, pool, shocked.get(0), N_YEARS, moves)
        mean = sim.mean(axis=0)
        se = sim.std(axis=0, ddof=1) / np.sqrt(len(sim))
        z = (mean - exp) / np.where(se > 0, se, np.inf)
        assert np.abs(z[1:]).max() < 4.5, z
        # the same run without the net flow is far off: the check can fail
        exp0 = expected_counts(ind, pool, src.get(0), N_YEARS, moves)
        assert np.abs((mean - exp0) / np.where(se > 0, se, np.inf))[1:].max() > 10
        # plans arrive at A and leave at B, tallied as the residual's moves, apart from
        # migration's (none without a demography)
        fl = out.flows.reshape(200, N_YEARS, -1, 4, 2)
        st = out.stock.reshape(200, N_YEARS, 4, 2)
        res_in, res_out = FLOW["n_residual_in"], FLOW["n_residual_out"]
        assert fl[:, 1:, res_in, 3, 1].sum() == 0 and fl[:, 1:, res_out, 3, 0].sum() == 0
        if demo is None:
            assert fl[:, 1:, FLOW["n_moved_in"]].sum() == 0
            assert fl[:, 1:, FLOW["n_moved_out"]].sum() == 0
            # each pupil at B leaves by the residual with probability 0.2: binomial counts
            opening = st[:, :-1, 3, 1].sum()
            k = fl[:, 1:, res_out, 3, 1].sum()
            assert abs(k - 0.2 * opening) < 4.5 * np.sqrt(0.2 * 0.8 * opening)
            # each at A is copied with probability 0.1 (a rate below one: 0 or 1 copy)
            opening = st[:, :-1, 3, 0].sum()
            k = fl[:, 1:, res_in, 3, 0].sum()
            assert abs(k - 0.1 * opening) < 4.5 * np.sqrt(0.1 * 0.9 * opening)
        else:
            assert fl[:, 1:, FLOW["n_moved_in"], 3].sum() > 0
            assert fl[:, 1:, FLOW["n_moved_out"], 3].sum() > 0
        assert fl[:, 1:, res_in, 3, 0].sum() > 0 and fl[:, 1:, res_out, 3, 1].sum() > 0
        assert fl[:, 1:, res_out, 1:3].sum() > 0  # SEN support out at both


def test_a_census_that_outgrows_the_buffers_is_drawn_again(toy, monkeypatch):
    """Arrivals can outgrow a draw thread's buffers mid-year: the one pass says so, the engine
    grows them and draws the year again, giving what the three passes give (which grow first)."""
    from simsend.engine import loop as engine

    model = KnownDemography(2, seed=3)
    model.net[:, 1:] = 1.5  # every identified child brings one or two arrivals a year
    demo = DemographySource(model, 42, np.array([0.0, 0.0]), np.array([0.0, 0.0]))
    redrawn = []
    one_pass = engine.year_pass

    def spy(*args):
        n = one_pass(*args)
        redrawn.append(n < 0)
        return n

    monkeypatch.setattr(engine, "_KEPT", engine._Kept())  # fresh states: none grown before
    monkeypatch.setattr(engine, "year_pass", spy)
    many, _ = _run(toy, demo, range(2))  # two draws: draw threads, the one pass
    assert any(redrawn) and not all(redrawn)
    monkeypatch.setattr(engine, "PARALLEL_MIN", 0)
    monkeypatch.setattr(engine, "PARALLEL_THREADS", 1)  # lone draws: the three passes
    ones = [_run(toy, demo, [k])[0] for k in range(2)]
    for f in ("stock", "flows", "transitions"):
        np.testing.assert_array_equal(getattr(many, f),
                                      np.concatenate([getattr(o, f) for o in ones]))
