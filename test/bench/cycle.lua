-- wrk script for make bench: the command cycle.  One device per wrk thread
-- (its certificate from wrkcert.so) on one connection: each answer that
-- carries a command is acknowledged with a DeviceInformation result, which
-- fetches the next command; an empty answer (queue empty) is followed by Idle.
local ffi = require("ffi")
ffi.cdef [[const char *wrkcert_cn(void);]]
local udid, uuid
acks, idles, bad = 0, 0, 0
local threads = {}

local head = '<?xml version="1.0" encoding="UTF-8"?>\n' ..
    '<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" ' ..
    '"http://www.apple.com/DTDs/PropertyList-1.0.dtd">\n<plist version="1.0">\n<dict>\n'
local hdrs = {["Content-Type"] = "application/x-apple-aspen-mdm", ["User-Agent"] = "MDM/1.0"}

local function kv(k, t, v) return '\t\t<key>' .. k .. '</key>\n\t\t<' .. t .. '>' .. v ..
    '</' .. t .. '>\n' end

-- What an iPhone answers to DeviceInformation with a dozen queries (~1.5 KB).
local function result(id)
    return head .. '\t<key>CommandUUID</key>\n\t<string>' .. id .. '</string>\n' ..
        '\t<key>QueryResponses</key>\n\t<dict>\n' ..
        kv('AvailableDeviceCapacity', 'real', '93.45127868652344') ..
        kv('BatteryLevel', 'real', '0.8100000023841858') ..
        kv('BluetoothMAC', 'string', 'a4:83:e7:12:34:56') ..
        kv('BuildVersion', 'string', '21E236') ..
        kv('DeviceCapacity', 'real', '119.1666259765625') ..
        kv('DeviceName', 'string', 'Bench iPhone ' .. udid) ..
        kv('IMEI', 'string', '35 391811 234567 8') ..
        kv('IsActivationLockEnabled', 'false', '') ..
        kv('IsSupervised', 'true', '') ..
        kv('Model', 'string', 'MQ9X3') ..
        kv('ModelName', 'string', 'iPhone') ..
        kv('OSVersion', 'string', '17.4.1') ..
        kv('ProductName', 'string', 'iPhone15,2') ..
        kv('SerialNumber', 'string', 'F2LZK1ABCDEF') ..
        kv('UDID', 'string', udid) ..
        kv('WiFiMAC', 'string', 'a4:83:e7:65:43:21') ..
        '\t</dict>\n\t<key>Status</key>\n\t<string>Acknowledged</string>\n' ..
        '\t<key>UDID</key>\n\t<string>' .. udid .. '</string>\n</dict>\n</plist>\n'
end

setup = function(thread) table.insert(threads, thread) end

request = function()
    -- (wrk's check of the script on its main thread gets "": not kept.)
    if udid == nil or udid == "" then udid = ffi.string(ffi.C.wrkcert_cn()) end
    if uuid ~= nil then return wrk.format("PUT", "/mdm", hdrs, result(uuid)) end
    return wrk.format("PUT", "/mdm", hdrs, head .. '\t<key>Status</key>\n\t<string>Idle</string>\n' ..
        '\t<key>UDID</key>\n\t<string>' .. udid .. '</string>\n</dict>\n</plist>\n')
end

response = function(status, headers, body)
    if status ~= 200 then bad = bad + 1 end
    if uuid ~= nil and status == 200 then acks = acks + 1 end
    uuid = body and body:match("<key>CommandUUID</key>%s*<string>([^<]+)</string>")
    if uuid == nil then idles = idles + 1 end
end

done = function(summary, latency, requests)
    local a, i, b = 0, 0, 0
    for _, t in ipairs(threads) do
        a = a + t:get("acks"); i = i + t:get("idles"); b = b + t:get("bad")
    end
    io.write(string.format("cycle_acks=%d cycle_empty_answers=%d cycle_non200=%d\n", a, i, b))
end
