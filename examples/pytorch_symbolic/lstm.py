"""A token-sequence classifier with an LSTM, written for pytorch-symbolic; only the import names symgraph_torch.

Run it with ``python examples/pytorch_symbolic/lstm.py``.
"""

from __future__ import annotations

import torch
from torch import nn

from symgraph_torch import Input, SymbolicModel, useful_layers


def build(vocab_size=50, seq_len=12, embedding_dim=16, hidden=32, num_layers=2, num_classes=4) -> SymbolicModel:
    # Token ids: the example data is drawn from min_value up to, not including, max_value.
    tokens = Input(shape=(seq_len,), dtype=torch.long, min_value=0, max_value=vocab_size)
    embedded = nn.Embedding(vocab_size, embedding_dim)(tokens)
    lstm = nn.LSTM(embedding_dim, hidden, num_layers=num_layers, batch_first=True, dropout=0.1)
    out, (h, _) = lstm(embedded)
    # The top layer's final hidden state, next to the outputs averaged over time.
    summary = useful_layers.ConcatLayer(dim=1)(h[-1], out.mean(dim=1))
    summary = nn.Dropout(0.2)(summary)
    logits = nn.Linear(summary.features, num_classes)(summary)
    return SymbolicModel(tokens, logits)


def main() -> None:
    torch.manual_seed(0)
    model = build()
    model.eval()
    tokens = torch.randint(0, 50, (3, 12))
    logits = model(tokens)
    print("logits:", tuple(logits.shape))
    model.summary()


if __name__ == "__main__":
    main()
