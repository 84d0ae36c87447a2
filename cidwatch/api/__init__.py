"""The check API (`cidwatch api`): dialers ask "may I present this number now?" over HTTP.

`book` holds what the API knows (the blocks in force, the inventory) and makes its answers,
`follower` keeps the book in step with the compacted topics, `server` is the aiohttp application
and the command, `openapi` describes it.
"""
