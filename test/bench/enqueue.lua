-- wrk script for make bench: fills the command-cycle devices' queues through
-- the REST API (POST /v1/commands, one DeviceInformation per device a call).
-- WRK_UDIDS: comma-separated UDIDs; WRK_KEY: the API key.
local udids = {}
for u in string.gmatch(os.getenv("WRK_UDIDS"), "[^,]+") do udids[#udids + 1] = '"' .. u .. '"' end
wrk.method = "POST"
wrk.headers["Authorization"] = "Bearer " .. os.getenv("WRK_KEY")
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"udids":[' .. table.concat(udids, ",") .. '],"command":{"RequestType":' ..
    '"DeviceInformation","Queries":["DeviceName","OSVersion","BuildVersion","ModelName",' ..
    '"Model","ProductName","SerialNumber","DeviceCapacity","AvailableDeviceCapacity",' ..
    '"BatteryLevel","IMEI","WiFiMAC","BluetoothMAC","IsSupervised","IsActivationLockEnabled"]}}'
