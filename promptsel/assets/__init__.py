"""Things promptsel fetches from package registries and reads from model files: offline archives
(the default model's wheel, vaderSentiment, MiniLM), model fingerprints, chat templates."""
