"""Product search: analysis, lexical retrieval and (later) semantic and learned ranking."""
