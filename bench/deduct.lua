-- wrk script: one 1-token deduction per request, on the service route.
wrk.method = "POST"
wrk.body = '{"account_id":"bench","tokens":1,"operation":"bench","resource":{"project":"load"}}'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer " .. os.getenv("BENCH_SERVICE_TOKEN")
