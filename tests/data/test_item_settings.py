"""Item settings uploads: validated like sales (line, column, problem; all or nothing), kept as
sent, replacing the settings as a whole; on_order in the sales upload; the per-series
lookup and the precedence request > item row > default."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from restock.data.store import SalesStore
from restock.errors import DataValidationError
from restock.query import ITEM_COLUMNS, InventoryPolicy, parse
from restock.serving.items import ItemTable, effective_policy

SALES = (b"date,product_id,store_id,quantity,on_hand,on_order\n"
         b"2024-01-01,A,S1,3,5,2\n2024-01-02,A,S1,3,4,\n2024-01-02,A,S2,1,9,6\n"
         b"2024-01-02,B,S1,3,4,\n")


@pytest.fixture
def sales(store: SalesStore) -> SalesStore:
    store.ingest_bytes(SALES)
    return store


def test_on_order_is_that_of_the_latest_stock_record_per_series(sales: SalesStore) -> None:
    latest = sales.stock_snapshot("on_order").set_index(["product_id", "store_id"])["on_order"]
    # A/S1's order of the 1st is not on the count of the 2nd: it arrived (blank = 0)
    assert latest.to_dict() == {("A", "S1"): 0.0, ("A", "S2"): 6.0, ("B", "S1"): 0.0}
    with pytest.raises(DataValidationError) as caught:
        sales.ingest_bytes(b"date,product_id,quantity,on_order\n2024-01-03,A,1,-4\n")
    assert caught.value.problems[0].column == "on_order"


def test_upload_replaces_the_settings_as_a_whole_and_is_kept_as_sent(sales: SalesStore) -> None:
    first = (b"SKU;store;MOQ;case_pack;lead_time_days;unit_cost\n"
             b"A;;10;6;3;2.5\nA;S2;;;4;\nB;;;;;\n")
    result = sales.replace_items(first, "items.csv")
    assert result["rows_read"] == 3 and result["upload"]["rows"] == 3
    frame = sales.item_settings().set_index(["product_id", "store_id"])
    assert frame.loc[("A", ""), ["moq", "order_multiple", "lead_time_days", "unit_cost"]
                     ].tolist() == [10, 6, 3, 2.5]
    assert frame.loc[("A", "S2"), "lead_time_days"] == 4 and np.isnan(frame.loc[("A", "S2"), "moq"])
    kept = sales.uploads_dir / "items" / f"{result['upload']['upload_id']}.csv"
    assert kept.read_bytes() == first
    sales.replace_items(b"product_id,max_stock\nB,100\n")
    assert sales.item_settings()[["product_id", "max_stock"]].values.tolist() == [["B", 100.0]]
    assert sales.items_version() == 2


@pytest.mark.parametrize("body, line, column, words", [
    (b"product_id,moq\nA,5\nZ,3\n", 3, "product_id", "unknown product 'Z'"),
    (b"product_id,store_id,moq\nB,S2,3\n", 2, "store_id", "no sales in store 'S2'"),
    (b"product_id,moq\nA,-1\n", 2, "moq", "greater than or equal to 0"),
    (b"product_id,order_multiple\nA,0\n", 2, "order_multiple", "or equal to 0.000001"),
    (b"product_id,max_stock\nA,-5\n", 2, "max_stock", "greater than or equal to 0"),
    (b"product_id,service_level\nA,0.5\n", 2, "service_level", "greater than 0.5"),
    (b"product_id,service_level\nA,1\n", 2, "service_level", "less than or equal to 0.9999"),
    (b"product_id,lead_time_days\nA,0\n", 2, "lead_time_days", "greater than 0"),
    (b"product_id,lead_time_days\nA,soon\n", 2, "lead_time_days", "valid number"),
    (b"product_id,unit_cost\nA,nan\n", 2, "unit_cost", "finite"),
    (b"product_id,moq,max_order_qty\nA,50,20\n", 2, "max_order_qty", "moq 50 is above"),
    # 8 in cases of 7 is 14: no order meets moq, multiple and max_order_qty 10 at once
    (b"product_id,moq,order_multiple,max_order_qty\nA,8,7,10\n", 2, "max_order_qty",
     "is 14, above max_order_qty 10"),
    # a subnormal case pack rounded every order to infinity
    (b"product_id,order_multiple\nA,1e-320\n", 2, "order_multiple",
     "greater than or equal to 0.000001"),
    (b"product_id,moq\nA,1\nB,2\nA,3\n", 4, "product_id,store_id", "duplicate: line 2"),
    (b"product_id,moq\n,1\n", 2, "product_id", "missing product_id"),
    (b"store_id,moq\nS1,1\n", 1, "product_id", "missing required column"),
])
def test_bad_item_files_name_the_row_and_column_and_change_nothing(
        sales: SalesStore, body: bytes, line: int, column: str, words: str) -> None:
    sales.replace_items(b"product_id,moq\nA,7\n")
    with pytest.raises(DataValidationError) as caught:
        sales.replace_items(body, "bad.csv")
    problem = caught.value.problems[0]
    assert (problem.row, problem.column) == (line, column) and words in problem.problem, problem
    assert sales.item_settings()[["product_id", "moq"]].values.tolist() == [["A", 7.0]]
    assert sales.items_version() == 1
    assert len(list((sales.uploads_dir / "items").iterdir())) == 1  # no file kept for it


def test_a_store_row_overrides_its_products_row_column_by_column() -> None:
    frame = pd.DataFrame([
        {"product_id": "A", "store_id": "", "moq": 10.0, "lead_time_days": 3.0},
        {"product_id": "A", "store_id": "S2", "lead_time_days": 9.0},
        {"product_id": "C", "store_id": "S1", "service_level": 0.99},
    ]).reindex(columns=["product_id", "store_id", *ITEM_COLUMNS])
    values = ItemTable.of(frame).values(np.array(["A", "A", "B", "C", "C"], dtype=object),
                                        np.array(["S1", "S2", "S1", "S1", "S2"], dtype=object))
    assert values["lead_time_days"].tolist()[:2] == [3.0, 9.0]
    assert values["moq"].tolist()[:2] == [10.0, 10.0]  # S2's row leaves moq to A's row
    assert np.isnan(values["moq"][2:]).all()  # B: no row
    assert values["service_level"][3] == 0.99 and np.isnan(values["service_level"][4])


def test_precedence_request_then_item_then_default() -> None:
    items = {name: np.array([5.0, np.nan]) for name in ITEM_COLUMNS}
    items["service_level"] = np.array([0.99, np.nan])
    given = parse(InventoryPolicy, {"lead_time_days": 12})
    chosen = effective_policy(given, items)
    assert chosen["lead_time_days"].tolist() == [12, 12]  # the request's, for every series
    assert chosen["review_period_days"].tolist() == [5, 0]  # the item's, else the default
    assert chosen["service_level"].tolist() == [0.99, 0.95]
    # a value equal to the default but given is still the request's
    assert effective_policy(parse(InventoryPolicy, {"service_level": 0.95}),
                            items)["service_level"].tolist() == [0.95, 0.95]


def test_a_problem_quotes_at_most_40_characters_of_the_cell(sales: SalesStore) -> None:
    with pytest.raises(DataValidationError) as caught:
        sales.replace_items(b"product_id,moq\nA," + b"1" * 100_000 + b"\n")
    problem = caught.value.problems[0]
    assert problem.column == "moq" and f"(got '{'1' * 40}')" in problem.problem


def test_the_upload_in_force_says_its_time_is_utc(sales: SalesStore) -> None:
    sales.replace_items(b"product_id,moq\nA,1\n")
    assert sales.items_summary()["upload"]["received_at"].endswith("+00:00")
