-- wrk script: the dashboard's balance + first history page, with an account key.
wrk.method = "GET"
wrk.headers["Authorization"] = "Bearer " .. os.getenv("BENCH_ACCOUNT_KEY")
