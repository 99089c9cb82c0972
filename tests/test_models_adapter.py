"""as_model: one interface, batched, never mutating the user's model."""

import numpy as np
import pytest
import torch
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.svm import LinearSVC

from confoundry.data import AuditData
from confoundry.models import as_model


def _snapshot(net):
    return ([p.detach().clone() for p in net.parameters()],
            [p.requires_grad for p in net.parameters()],
            [m.training for m in net.modules()])


def _assert_same(net, snap):
    params, grads, modes = snap
    for p, q in zip(net.parameters(), params):
        assert torch.equal(p.detach(), q)
    assert [p.requires_grad for p in net.parameters()] == grads
    assert [m.training for m in net.modules()] == modes


class DropNet(torch.nn.Module):
    def __init__(self, d=4, k=1):
        super().__init__()
        self.body = torch.nn.Sequential(torch.nn.Linear(d, 8), torch.nn.ReLU(),
                                        torch.nn.Dropout(0.5), torch.nn.BatchNorm1d(8))
        self.head = torch.nn.Linear(8, k)

    def forward(self, x):
        return self.head(self.body(x))


@pytest.mark.parametrize("train_mode", [True, False])
def test_torch_model_is_not_mutated_and_runs_in_eval(train_mode):
    torch.manual_seed(0)
    net = DropNet()
    net.train(train_mode)
    net.head.weight.requires_grad_(False)  # a frozen layer must stay frozen
    net.body[3].eval()  # a mixed-mode model must keep its mix
    snap = _snapshot(net)
    running = net.body[3].running_mean.clone()
    X = np.random.default_rng(0).normal(size=(50, 4))
    m = as_model(net, output="logits", batch_size=7)
    s1 = m.predict_scores(X)
    s2 = m.predict_scores(X)
    _assert_same(net, snap)
    assert torch.equal(net.body[3].running_mean, running)  # no BatchNorm update
    np.testing.assert_array_equal(s1, s2)  # eval mode: dropout off, deterministic
    assert s1.shape == (50,) and np.all((s1 > 0) & (s1 < 1))


def test_batches_give_the_same_answer_as_one_pass():
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(3, 3))
    X = torch.randn(100, 3)
    a = as_model(net, output="logits", batch_size=1000).predict_scores(X)
    b = as_model(net, output="logits", batch_size=9).predict_scores(X)
    np.testing.assert_allclose(a, b, rtol=1e-6)
    assert a.shape == (100, 3)
    np.testing.assert_allclose(a.sum(axis=1), 1.0, rtol=1e-6)


def test_logits_auto_with_task_and_probabilities():
    net = torch.nn.Sequential(torch.nn.Linear(2, 1))
    with torch.no_grad():
        net[0].weight.fill_(10.0)
    X = torch.tensor([[1.0, 1.0], [-1.0, -1.0]])
    s = as_model(net, task="binary").predict_scores(X)
    assert s[0] > 0.99 and s[1] < 0.01
    r = as_model(net, task="regression").predict_scores(X)
    assert r[0] > 10  # regression values are not squashed


def test_dataframe_and_auditdata_inputs_and_preprocess(tabular):
    X, y, _ = tabular
    net = torch.nn.Sequential(torch.nn.Linear(3, 1))
    pre_calls = []

    def preprocess(batch):
        pre_calls.append(len(batch))
        return torch.tensor(batch.to_numpy(), dtype=torch.float32)

    m = as_model(net, preprocess=preprocess, output="logits", batch_size=128)
    s = m.predict_scores(AuditData(X, y))
    assert s.shape == (len(X),) and pre_calls == [128, 128, 128, 16]


def test_sklearn_estimators(tabular):
    X, y, _ = tabular
    lr = LogisticRegression(max_iter=500).fit(X, y)
    np.testing.assert_allclose(as_model(lr).predict_scores(X), lr.predict_proba(X)[:, 1])
    reg = LinearRegression().fit(X, X["age"])
    np.testing.assert_allclose(as_model(reg).predict_scores(X), reg.predict(X))
    svc = LinearSVC().fit(X, y)
    with pytest.warns(UserWarning, match="decision_function"):
        s = as_model(svc).predict_scores(X)
    assert np.all((s > 0) & (s < 1))


def test_plain_callable():
    m = as_model(lambda X: np.asarray(X)[:, 0] * 0 + 0.25)
    np.testing.assert_allclose(m.predict_scores(np.zeros((5, 2))), 0.25)


def test_model_failure_names_the_batch():
    def broken(X):
        if len(X) < 10:
            raise RuntimeError("shape mismatch inside the model")
        return np.zeros(len(X))

    with pytest.raises(RuntimeError, match=r"failed on the batch of rows 20..24 .*shape mismatch"):
        as_model(broken, batch_size=10).predict_scores(np.zeros((25, 2)))


def test_bad_outputs_and_arguments():
    with pytest.raises(ValueError, match="returned NaN or infinite outputs for 1 row"):
        as_model(lambda X: np.where(np.arange(len(X)) == 3, np.nan, 0.5)).predict_scores(
            np.zeros((5, 1)))
    with pytest.raises(ValueError, match="returned 4 outputs for a batch of 5 rows"):
        as_model(lambda X: np.zeros(4)).predict_scores(np.zeros((5, 1)))
    with pytest.raises(ValueError, match="output='probs' is not valid"):
        as_model(lambda X: X, output="probs")
    with pytest.raises(ValueError, match="batch_size=0 is not valid"):
        as_model(lambda X: X, batch_size=0)
    with pytest.raises(TypeError, match="model has type int"):
        as_model(3)
    with pytest.raises(ValueError, match="is not fitted"):
        as_model(LogisticRegression())
    with pytest.raises(TypeError, match="preprocess=.* is not callable"):
        as_model(lambda X: X, preprocess="scale")


def test_other_device_runs_a_copy():
    net = torch.nn.Sequential(torch.nn.Linear(2, 1))
    m = as_model(net, device="cpu", output="logits")
    assert m.module is net  # same device: no copy
    meta = as_model(net, device="meta", output="logits")
    assert meta.module is not net and next(net.parameters()).device.type == "cpu"
