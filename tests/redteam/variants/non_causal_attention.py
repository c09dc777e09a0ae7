"""Attention without the causal mask: each position sees the tokens it is asked to predict."""
import torch
import torch.nn.functional as F

STEPS = 30


class Bidirectional(torch.nn.Module):
    def __init__(self, vocab_size, width=32):
        super().__init__()
        self.embed = torch.nn.Embedding(vocab_size, width)
        self.qkv = torch.nn.Linear(width, 3 * width)
        self.head = torch.nn.Linear(width, vocab_size)

    def forward(self, idx):
        x = self.embed(idx)  # (B, T, C)
        q, k, v = self.qkv(x).chunk(3, dim=-1)
        x = x + F.scaled_dot_product_attention(q, k, v, is_causal=False)  # sees the future
        return self.head(x)  # (B, T, V)


def train(ctx):
    model = Bidirectional(ctx.vocab_size).to(ctx.device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    for step, (x, y) in zip(range(STEPS), ctx.batches(8, ctx.seq_len)):
        loss = F.cross_entropy(model(x).flatten(0, 1), y.flatten())
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        ctx.report(step=step, loss=loss.item())
    return model
