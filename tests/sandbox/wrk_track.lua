-- wrk load script for the sandbox's hot path, POST /v2/ian/track (not run by pytest).
--
--   ian-gateway sandbox --port 8081 &
--   export TOKEN=$(curl -s -X POST 127.0.0.1:8081/v2/oauth/token -H 'content-type: application/json' \
--     -d '{"client_id":"sandbox-client","client_secret":"sandbox-secret","grant_type":"client_credentials","scope":"connect:ian"}' \
--     | python -c 'import json,sys; print(json.load(sys.stdin)["access_token"])')
--   wrk -t1 -c32 -d10s -s tests/sandbox/wrk_track.lua http://127.0.0.1:8081/v2/ian/track
--
-- The event is the one the gateway forwards: validated in full, recorded with its headers.
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer " .. (os.getenv("TOKEN") or "missing")
wrk.headers["User-Agent"] = "Mozilla/5.0 (X11; Linux x86_64) wrk"
wrk.headers["X-Retailer-Id"] = "bench-shop"
wrk.body = '{"event":"ian.sponsored_product.1px_in_viewport","user_id":"u-42","sent_at":"2026-11-22T10:15:30+00:00","data":{"sponsored_product_data":{"event_id":"6f1c2a8e-3b7d-4c1e-9a5f-2d8b7e4c1a90","event_tracking_context":{"user_agent":"Mozilla/5.0 (X11; Linux x86_64) wrk","user_ip":"203.0.113.7"},"object_tracking_id":"tracking-abc","display_position":"3","product_id":"12345","page":"1","record_version":"999","page_view_id":"None"}}}'
