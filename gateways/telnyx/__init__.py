"""The Telnyx Call Control gateway: signed webhooks in, Call Control commands out."""
