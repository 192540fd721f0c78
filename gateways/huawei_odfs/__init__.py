"""Gateway for Huawei CEC ODFS/OIAP dialog interfaces: the gateway stands in for the ODFS."""
