"""The one way pages draw a table people sort, filter and page: dash-ag-grid, set up alike."""

import dash_ag_grid as dag

PAGE_SIZE = 20


def data_grid(grid_id, columns: list[dict], *, empty: str, row_id: str = "id", row_classes: dict | None = None,
              class_name: str = "", min_width: int | None = 90) -> dag.AgGrid:
    """A sortable, filterable, paged grid whose rows grow the page (no inner scroll)."""
    defaults = {"sortable": True, "filter": True, "resizable": True, **({"minWidth": min_width} if min_width else {})}
    return dag.AgGrid(
        id=grid_id, rowData=[], columnDefs=columns, getRowId=f"params.data.{row_id}", defaultColDef=defaults,
        dashGridOptions={"pagination": True, "paginationPageSize": PAGE_SIZE, "domLayout": "autoHeight",
                         "enableCellTextSelection": True, "ensureDomOrder": True,
                         "localeText": {"noRowsToShow": empty}},
        rowClassRules=row_classes or {}, className=f"ag-theme-alpine {class_name}".strip(),
    )
