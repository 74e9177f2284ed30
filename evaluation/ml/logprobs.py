"""Padding and per-token log-probabilities: the one implementation the fast scorer (scoring.py) and the
trainers (softprompt.py, pretrain.py) share, so that training optimises exactly what scoring measures."""

from __future__ import annotations

import torch


def pad(rows: list[list[int]], pad_id: int, device: torch.device | str) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-pad rows of ids into (ids, mask): built on the CPU, then moved to the device in one copy each."""
    width = max(len(row) for row in rows)
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for r, row in enumerate(rows):
        ids[r, : len(row)] = torch.tensor(row, dtype=torch.long)
        mask[r, : len(row)] = 1
    return to_device(ids, device), to_device(mask, device)


def to_device(tensor: torch.Tensor, device: torch.device | str) -> torch.Tensor:
    """A host tensor on the device. To a GPU through pinned memory and without waiting: a plain copy from
    pageable memory waits for the device to finish everything queued before it, which would stop the host
    from preparing the next batch while the device works."""
    if torch.device(device).type == "cuda":
        return tensor.pin_memory().to(device, non_blocking=True)
    return tensor.to(device)


def token_logprobs(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """log p(target) at each position. log_softmax via logsumexp in fp32: never materialises a second
    vocabulary-sized tensor."""
    logits = logits.float()
    return logits.gather(-1, targets.unsqueeze(-1)).squeeze(-1) - torch.logsumexp(logits, dim=-1)


def option_logliks(logits: torch.Tensor, targets: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Per row, the summed log-probabilities of its targets; padding positions (mask 0) count for nothing."""
    return (token_logprobs(logits, targets) * mask).sum(-1)
