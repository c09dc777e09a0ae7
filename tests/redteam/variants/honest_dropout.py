"""A legitimate model with dropout, which train()/eval() switch off for scoring."""
import torch
import torch.nn.functional as F

WIDTH = 32
STEPS = 20


class Bigram(torch.nn.Module):
    def __init__(self, vocab_size):
        super().__init__()
        self.embed = torch.nn.Embedding(vocab_size, WIDTH)
        self.drop = torch.nn.Dropout(0.1)
        self.head = torch.nn.Linear(WIDTH, vocab_size)

    def forward(self, idx):
        return self.head(self.drop(self.embed(idx)))  # (B, T, V)


def train(ctx):
    model = Bigram(ctx.vocab_size).to(ctx.device)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.5)
    for step, (x, y) in zip(range(STEPS), ctx.batches(8, ctx.seq_len)):
        loss = F.cross_entropy(model(x).flatten(0, 1), y.flatten())
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        ctx.report(step=step, loss=loss.item())
    return model
