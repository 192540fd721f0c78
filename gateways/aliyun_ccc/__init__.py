"""Aliyun CloudCallCenter outbound-bot `Dialogue` API: the gateway impersonates the endpoint."""
