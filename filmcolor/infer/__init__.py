"""Batched inference: frames in, frames with model chroma out."""
