"""``vllm.inputs`` (fake): the prompt schemas ``LLM.generate`` takes."""

from vllm.inputs.data import TextPrompt, TokensPrompt

__all__ = ["TextPrompt", "TokensPrompt"]
