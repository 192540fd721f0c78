"""Gateway for Aliyun intelligent voice interaction (智能语音交互) inbound/outbound callbacks."""
