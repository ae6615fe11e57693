"""PyG code runs on wally under ``wally run``: ``torch_geometric.nn/utils/data`` resolve to
``wally.geometric``, as ``torch`` resolves to ``wally``."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

SCRIPT = '''
import torch
import torch.nn.functional as F
from torch_geometric.nn import GCNConv
from torch_geometric.utils import degree
from torch_geometric.data import Data

class Net(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = GCNConv(3, 8)
        self.conv2 = GCNConv(8, 2)

    def forward(self, x, edge_index):
        return self.conv2(F.relu(self.conv1(x, edge_index)), edge_index)

torch.manual_seed(0)
edge_index = torch.tensor([[0, 1, 1, 2], [1, 0, 2, 1]], dtype=torch.long)
data = Data(x=torch.randn(3, 3), edge_index=edge_index, y=torch.tensor([0, 1, 1]))
model = Net()
opt = torch.optim.Adam(model.parameters(), lr=0.05)
for _ in range(50):
    opt.zero_grad()
    loss = F.cross_entropy(model(data.x, data.edge_index), data.y)
    loss.backward()
    opt.step()
import torch_geometric
print(torch.__name__, torch_geometric.__name__, float(loss) < 0.1, degree(edge_index[1]).tolist())
'''


def test_a_pyg_script_runs_under_wally_run(tmp_path):
    script = tmp_path / "pyg_script.py"
    script.write_text(SCRIPT)
    src = str(Path(__file__).resolve().parents[1] / "src")
    done = subprocess.run([sys.executable, "-m", "wally", "run", str(script)],
                          capture_output=True, text=True, timeout=120,
                          env={"PYTHONPATH": src, "PATH": "/usr/bin:/bin"})
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "wally wally.geometric True [1.0, 2.0, 1.0]"
