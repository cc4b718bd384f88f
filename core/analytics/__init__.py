"""The read side: rollups written by each purchase transaction, and the queries over them.

- `rollups`: bucket ids and the increments each grant or revocation writes.
- `periods`: calendar arithmetic in UTC (buckets, covers of a range).
- `queries`: `get_purchase_analytics`, `purchase_figures`, `buyer_figures`.
- `buyers`: the buyer pipeline and its cache.
- `cohorts`: `cohort_figures`, and the cohort documents each grant and revocation keeps.
- `retention`: `retention_figures`, read from the cohorts' retention documents.
"""
