"""Implausible or incomplete data: validate and a baseline build name the file, the row and
what was expected (counts above their population, absurd counts, missing or suppressed
population cells, unknown [data.files] keys, empty files, areas without EHC plans)."""

import re

import pytest

from simsend.data import DataError, DataSpec, load_baseline, validate_data

# C1: 11,371 people aged 0-25 at census 2022 (25 ages of 437 and one of 446)
POP = "year,area,age,count\n" + "".join(
    f"2022,C1,{a},{446 if a == 0 else 437}\n2022,C2,{a},{900 + a}\n" for a in range(26))

STOCK = """year,area,plan,age_group,count
2022,C1,ehcp,all,300
2022,C1,sen_support,all,1200
2022,C2,ehcp,all,400
2022,C2,sen_support,all,1500
"""


def files(tmp_path, pop=POP, stock=STOCK, **extra):
    out = {}
    for k, text in {"population": pop, "stock": stock, **extra}.items():
        if text is not None:
            (tmp_path / f"{k}.csv").write_text(text)
            out[k] = tmp_path / f"{k}.csv"
    return out


def spec(tmp_path, areas=("all",), **kw):
    return DataSpec(source="files", areas=areas, baseline_year=2022, files=files(tmp_path, **kw))


def errors(rep, text):
    return [f for f in rep.errors if text in f.message]


def test_clean_files_build(tmp_path):
    s = spec(tmp_path)
    assert validate_data(s).ok
    assert load_baseline(s).individuals.sum() == 300 + 1200 + 400 + 1500


def test_sen_support_above_the_population(tmp_path):
    s = spec(tmp_path, stock=STOCK.replace("C1,sen_support,all,1200", "C1,sen_support,all,50000"))
    hits = errors(validate_data(s), "more than its population")
    assert len(hits) == 1
    f = hits[0]
    assert (f.file, f.row, f.column, f.value) == ("stock.csv", 3, "count", 50000)
    assert "SEN support 50,000 in area C1 at census 2022" in f.message
    assert "population.csv: 11,371 at ages 0-25" in f.message
    with pytest.raises(DataError, match=r"stock.csv:3: count=50000: SEN support 50,000 .* "
                                        r"11,371 at ages 0-25"):
        load_baseline(s)


def test_stock_of_an_age_band_or_age_above_its_population(tmp_path):
    stock = STOCK + "2022,C2,ehcp,16_to_19,3700\n"  # C2 aged 16-19: 916+917+918+919 = 3670
    rep = validate_data(spec(tmp_path, stock=stock))
    f = errors(rep, "more than its population")[0]
    assert f.row == 6 and "EHC plans 3,700 in area C2" in f.message
    assert "3,670 at ages 16-19" in f.message
    stock = "year,area,tier,age,count\n2022,C1,specialist,7,438\n2022,C2,specialist,all,5\n"
    f = errors(validate_data(spec(tmp_path, stock=stock)), "more than its population")[0]
    assert f.row == 2 and "EHC plans (tier specialist) 438" in f.message
    assert "437 at age 7" in f.message


def test_stock_without_population_that_year_is_not_compared(tmp_path):
    stock = STOCK + "2019,C1,sen_support,all,50000\n"
    assert not errors(validate_data(spec(tmp_path, stock=stock)), "more than its population")


@pytest.mark.parametrize("kind, text, row", [
    ("stock", STOCK.replace("C2,sen_support,all,1500", "C2,sen_support,all,99999999999"), 5),
    ("pop", POP.replace("2022,C1,3,437", "2022,C1,3,99999999999"), 8),
])
def test_absurd_count_is_an_error(tmp_path, kind, text, row):
    s = spec(tmp_path, **{kind: text})
    file = "stock.csv" if kind == "stock" else "population.csv"
    hits = errors(validate_data(s), "count above 100,000,000")
    assert [(f.file, f.row, f.value) for f in hits] == [(file, row, "99999999999")]
    with pytest.raises(DataError, match=rf"{file}:{row}: count='99999999999': count above"):
        load_baseline(s)


def test_missing_population_ages_are_named(tmp_path):
    drop = {"2022,C1,7,437", "2022,C1,8,437", "2022,C1,9,437", "2022,C1,12,437",
            "2022,C2,0,900"}
    pop = "".join(line + "\n" for line in POP.splitlines() if line not in drop)
    s = spec(tmp_path, pop=pop)
    assert [(f.file, f.column, f.value) for f in validate_data(s).errors] == [
        ("population.csv", "age", "7-9, 12"), ("population.csv", "age", "0")]
    with pytest.raises(DataError) as exc:
        load_baseline(s)
    msg = str(exc.value)
    assert "population.csv: population incomplete at census 2022" in msg
    assert "no row for area C1 at census 2022 at age(s) 7-9, 12" in msg
    assert "no row for area C2 at census 2022 at age(s) 0" in msg
    assert [f.value for f in exc.value.findings] == ["7-9, 12", "0"]
    # one area, one age: a single line
    pop = "".join(line + "\n" for line in POP.splitlines() if line != "2022,C2,0,900")
    with pytest.raises(DataError, match=r"^population.csv: no row for area C2 at census 2022 at "
                                        r"age\(s\) 0; expected one row per age 0-25"):
        load_baseline(spec(tmp_path, pop=pop, areas=("C2",)))


def test_suppressed_population_cell_is_named(tmp_path):
    s = spec(tmp_path, pop=POP.replace("2022,C2,4,904", "2022,C2,4,c"))
    rep = validate_data(s)
    assert [(f.file, f.row) for f in rep.warnings] == [("population.csv", 11)]
    assert [(f.file, f.row) for f in rep.errors] == [("population.csv", 11)]
    assert "give the published figure" in rep.errors[0].message
    with pytest.raises(DataError, match=re.escape(
            "population.csv:11: population of area C2 at age 4, census 2022, is suppressed or "
            "empty; a baseline needs every age's estimate: give the published figure")):
        load_baseline(s)


def test_typo_in_a_files_key_is_named_without_a_misleading_stock_error(tmp_path):
    paths = files(tmp_path)
    s = DataSpec(source="files", areas=("all",), baseline_year=2022,
                 files={"population": paths["population"], "stok": paths["stock"]})
    rep = validate_data(s)
    assert len(rep.errors) == 1
    assert rep.errors[0].message.startswith(
        "[data.files.stok] unknown key (did you mean 'stock'?); expected one of "
        "['stock', 'flows', 'population', 'need_mix', 'areas'] or a published file's family "
        "(sen2_age_caseload, ")
    with pytest.raises(DataError, match=re.escape("[data.files.stok] unknown key (did you mean "
                                                  "'stock'?)")):
        load_baseline(s)


def test_published_file_under_an_unknown_key_names_its_family(tmp_path, fixtures):
    paths = files(tmp_path)
    s = DataSpec(source="files", areas=("all",), baseline_year=2022,
                 files={**paths, "sen2": fixtures / "sen2_age_caseload.csv"})
    with pytest.raises(DataError, match=r"\[data.files.sen2\] unknown key; expected one of .*; "
                                        r"sen2_age_caseload.csv is a published sen2_age_caseload "
                                        r"file: give it as \[data.files.sen2_age_caseload\] and "
                                        r"a run converts it"):
        load_baseline(s)
    lait = DataSpec(source="files", areas=("all",), baseline_year=2022,
                    files={**paths, "lait_sen": fixtures / "lait_la_sen_indicators_excerpt.csv"})
    with pytest.raises(DataError, match=r"lait_la_sen_indicators_excerpt.csv is a published "
                                        r"lait_sen file, which a run cannot read"):
        load_baseline(lait)


def test_header_only_population_file(tmp_path):
    s = spec(tmp_path, pop="year,area,age,count\n")
    rep = validate_data(s)
    assert [(f.file, f.row) for f in errors(rep, "no usable data rows")] == [
        ("population.csv", None)]
    with pytest.raises(DataError, match="population.csv: no usable data rows"):
        load_baseline(s)


def test_area_only_in_the_population_file(tmp_path):
    pop = POP + "".join(f"2022,C3,{a},50\n" for a in range(26))
    with pytest.raises(DataError, match=r"^stock.csv: no EHC plan rows \(plan=ehcp\) for area C3 "
                                        r"at census 2022"):
        load_baseline(spec(tmp_path, pop=pop))


def test_ages_text():
    from simsend.data.checks import ages_text

    assert ages_text([3]) == "3"
    assert ages_text([25, 0, 1, 2, 24]) == "0-2, 24-25"
