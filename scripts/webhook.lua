-- wrk script: POST a signed GitHub push with a fresh X-GitHub-Delivery per
-- request. PAYLOAD is the payload file, SIG256 its X-Hub-Signature-256.
local f = assert(io.open(os.getenv("PAYLOAD"), "rb"))
local body = f:read("*a")
f:close()
local sig = os.getenv("SIG256")
-- A distinct prefix per run: ids of an earlier run would be duplicates.
local run = os.getenv("RUN_ID") or "load"
local threads = 0

function setup(thread)
  threads = threads + 1
  thread:set("tid", tostring(threads))
end

local n = 0
function request()
  n = n + 1
  return wrk.format("POST", "/webhook", {
    ["Content-Type"] = "application/json",
    ["X-GitHub-Event"] = "push",
    ["X-GitHub-Delivery"] = run .. "-" .. tid .. "-" .. n,
    ["X-Hub-Signature-256"] = sig,
  }, body)
end
