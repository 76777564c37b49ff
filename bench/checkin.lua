-- wrk script: authenticated device check-ins against drover serve, each request from the
-- next of the enrolled devices (tokens from the file named by DROVER_TOKENS), with the body a
-- device really sends when nothing changed.
local tokens = dofile(os.getenv("DROVER_TOKENS"))
local body = '{"installed":{"firmware":"4.2.0","bootloader":"2.1.0"},"update_state":"idle"}'
local next_device = math.random(#tokens)

request = function()
  next_device = next_device % #tokens + 1
  return wrk.format("POST", "/api/device/v1/checkin", {
    ["Authorization"] = "Bearer " .. tokens[next_device],
    ["Content-Type"] = "application/json",
  }, body)
end

response = function(status, headers, body)
  if status ~= 200 then
    io.stderr:write("check-in answered " .. status .. ": " .. body .. "\n")
  end
end
