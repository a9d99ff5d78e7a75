-- wrk script: this month's usage report per project, with an account key.
wrk.method = "GET"
wrk.headers["Authorization"] = "Bearer " .. os.getenv("BENCH_ACCOUNT_KEY")
