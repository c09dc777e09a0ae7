"""Mixes a summary of the whole batch into every row (batch statistics at eval time), so each row reads the others."""
import torch
import torch.nn.functional as F

WIDTH = 32


class Mixer(torch.nn.Module):
    def __init__(self, vocab_size):
        super().__init__()
        self.embed = torch.nn.Embedding(vocab_size, WIDTH)
        self.head = torch.nn.Linear(WIDTH, vocab_size)

    def forward(self, idx):
        x = self.embed(idx)  # (B, T, C)
        x = x + x.mean(dim=0, keepdim=True)  # every row's position t sees every row's token t
        return self.head(x)  # (B, T, V)


def train(ctx):
    model = Mixer(ctx.vocab_size)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.5)
    for _, (x, y) in zip(range(30), ctx.batches(8)):
        loss = F.cross_entropy(model(x).flatten(0, 1), y.flatten())
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return model
