"""An honest small model (logits from the current and previous token), trained a fixed 100 steps: the on-clock half of evade_prefix_memo_trains_on."""
import torch
import torch.nn.functional as F

WIDTH = 64
LR = 3e-3
STEPS = 100


class Pair(torch.nn.Module):
    """Logits at t from tokens t and t - 1: causal."""

    def __init__(self, vocab_size):
        super().__init__()
        self.now = torch.nn.Embedding(vocab_size, WIDTH)
        self.before = torch.nn.Embedding(vocab_size, WIDTH)
        self.head = torch.nn.Linear(WIDTH, vocab_size)

    def forward(self, idx):
        before = F.pad(idx, (1, 0))[:, :-1]
        return self.head(torch.relu(self.now(idx) + self.before(before)))  # (B, T, V)


def train(ctx):
    model = Pair(ctx.vocab_size).to(ctx.device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=LR)
    batches = [batch for _, batch in zip(range(STEPS), ctx.batches(8))]
    for step in range(STEPS):
        x, y = batches[step]
        loss = F.cross_entropy(model(x).flatten(0, 1), y.flatten())
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        ctx.report(step=step + 1, loss=loss.item())
    return model
