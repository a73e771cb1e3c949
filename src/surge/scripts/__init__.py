"""Answer scripts (答复口径): each city's script book, in immutable versions, and the province's
request classification the entries and tickets use."""
