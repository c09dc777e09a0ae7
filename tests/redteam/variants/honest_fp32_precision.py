"""An honest model that asks for TF32 matmuls through torch's per-backend precision setting (the successor of allow_tf32)."""
import torch
import torch.nn.functional as F

WIDTH = 32


class Bigram(torch.nn.Module):
    def __init__(self, vocab_size):
        super().__init__()
        self.embed = torch.nn.Embedding(vocab_size, WIDTH)
        self.head = torch.nn.Linear(WIDTH, vocab_size)

    def forward(self, idx):
        return self.head(self.embed(idx))  # (B, T, V)


def train(ctx):
    torch.backends.cuda.matmul.fp32_precision = "tf32"
    torch.backends.cudnn.conv.fp32_precision = "tf32"
    model = Bigram(ctx.vocab_size).to(ctx.device)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.5)
    for step, (x, y) in zip(range(20), ctx.batches(8)):
        loss = F.cross_entropy(model(x).flatten(0, 1), y.flatten())
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        ctx.report(step=step, loss=loss.item())
    return model
