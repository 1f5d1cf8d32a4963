"""Tensors passed as keyword arguments are recorded as tensors (issue 12, item 1).

The oracle is a hand-written module that holds the same module objects and calls
them the same way; outputs and gradients must match exactly.
"""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

import torch.nn.functional as F  # noqa: E402
from torch import nn  # noqa: E402

import symgraph_torch  # noqa: E402


def test_attention_with_a_symbolic_mask_given_by_keyword() -> None:
    torch.manual_seed(0)
    attention = nn.MultiheadAttention(8, 2, batch_first=True)
    x = symgraph_torch.Input((5, 8))
    mask = symgraph_torch.Input((5,), dtype=torch.bool, batch_size=None)
    out, _ = attention(x, x, x, key_padding_mask=mask)
    model = symgraph_torch.SymbolicModel((x, mask), out)

    class Written(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.attention = attention

        def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
            return self.attention(x, x, x, key_padding_mask=mask)[0]

    data = torch.rand(3, 5, 8)
    padding = torch.tensor([[False] * 5, [False, False, False, True, True], [False] * 4 + [True]])
    expected = Written()(data, padding)
    got = model(data, padding)
    assert torch.equal(got, expected)
    # The mask really is an input: another mask gives another answer, as eagerly.
    other = torch.zeros(3, 5, dtype=torch.bool)
    assert torch.equal(model(data, other), Written()(data, other))
    assert not torch.equal(model(data, other), got)


def test_a_constant_mask_by_keyword_and_gradients_match() -> None:
    torch.manual_seed(1)
    attention = nn.MultiheadAttention(8, 2, batch_first=True)
    causal = torch.triu(torch.ones(5, 5, dtype=torch.bool), diagonal=1)
    x = symgraph_torch.Input((5, 8))
    model = symgraph_torch.SymbolicModel(x, attention(x, x, x, attn_mask=causal)[0])
    data = torch.rand(2, 5, 8)
    model(data).sum().backward()
    grads = {n: p.grad.clone() for n, p in attention.named_parameters()}
    attention.zero_grad()
    attention(data, data, data, attn_mask=causal)[0].sum().backward()
    for name, p in attention.named_parameters():
        assert torch.equal(grads[name], p.grad), name


def test_functional_calls_with_tensor_keywords() -> None:
    torch.manual_seed(2)
    x = symgraph_torch.Input((8,))
    target = symgraph_torch.Input((), dtype=torch.int64, max_value=7)
    norm = nn.LayerNorm(8)
    weights = torch.rand(8)
    normed = F.layer_norm(x, (8,), weight=norm.weight, bias=norm.bias)
    loss = F.cross_entropy(normed, target, weight=weights)
    model = symgraph_torch.SymbolicModel((x, target), (normed, loss))
    data, labels = torch.rand(4, 8), torch.tensor([1, 7, 0, 3])
    got_normed, got_loss = model(data, labels)
    expected_normed = F.layer_norm(data, (8,), weight=norm.weight, bias=norm.bias)
    assert torch.equal(got_normed, expected_normed)
    assert torch.equal(got_loss, F.cross_entropy(expected_normed, labels, weight=weights))
    # The LayerNorm's parameters get their gradients, as in eager code.
    got_loss.backward()
    recorded = norm.weight.grad.clone()
    norm.zero_grad()
    eager_normed = F.layer_norm(data, (8,), weight=norm.weight, bias=norm.bias)
    F.cross_entropy(eager_normed, labels, weight=weights).backward()
    assert torch.equal(recorded, norm.weight.grad)
