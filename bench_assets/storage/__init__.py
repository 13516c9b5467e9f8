"""The warehouse: Parquet files are the record; ``bench.duckdb`` holds views over them."""
