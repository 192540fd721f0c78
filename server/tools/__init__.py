"""`dialogue`: the flow author's command-line tools (validate, chat, test, graph, replay).

Every tool runs the pure engine in-process (`server.engine`), so none needs a server, except
`replay`, which fetches a recorded call's turns from one.
"""
