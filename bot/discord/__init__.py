"""The Discord edge: the client, delivery, the status board, views, wording, mention policy."""
