"""symgraph demo: record an order-processing pipeline once, then replay it on fresh data.

The second part records a numpy feature pipeline with ``symgraph_numpy`` and
replays it on numpy arrays and on a chunked dask array. The third builds the toy
ResNet of the Keras guide with ``symgraph_torch`` and trains it for a few steps
on synthetic images.

Run it with ``make demo`` (or ``python examples/demo.py`` inside the project's
virtual environment). Everything here uses synthetic data; nothing is read from
disk or the network.
"""

from __future__ import annotations

import operator
import pickle
import random
from collections import Counter
from typing import Any

import symgraph

# product -> (category, price in cents)
CATALOG = {
    "espresso": ("coffee", 250),
    "latte": ("coffee", 380),
    "green tea": ("tea", 300),
    "croissant": ("bakery", 220),
    "bagel": ("bakery", 260),
    "muffin": ("bakery", 290),
}
CUSTOMERS = ["ada", "bo", "cy", "dee", "eli", "fay", "gus"]


def make_orders(rng: random.Random, count: int) -> list[dict[str, Any]]:
    """Synthetic orders: an id, a customer, a few items and a free-text note."""
    notes = ["  extra hot ", "no sugar", "", "  to go", "birthday!  "]
    return [
        {
            "id": 1000 + i,
            "customer": rng.choice(CUSTOMERS),
            "items": rng.choices(sorted(CATALOG), k=rng.randint(1, 4)),
            "note": rng.choice(notes),
        }
        for i in range(count)
    ]


# Helpers recorded with add_to_graph. They work on whole collections, so the
# recorded graph does not depend on how many orders a batch has.
def customers_of(orders: list[dict[str, Any]]) -> set[str]:
    return {order["customer"] for order in orders}


def orders_by(orders: list[dict[str, Any]], customers: set[str]) -> list[dict[str, Any]]:
    return [order for order in orders if order["customer"] in customers]


def order_totals(orders: list[dict[str, Any]], catalog: dict[str, tuple[str, int]]) -> dict[int, int]:
    return {order["id"]: sum(catalog[item][1] for item in order["items"]) for order in orders}


def category_counts(orders: list[dict[str, Any]], catalog: dict[str, tuple[str, int]]) -> dict[str, int]:
    return dict(Counter(catalog[item][0] for order in orders for item in order["items"]))


def clean_notes(orders: list[dict[str, Any]]) -> list[str]:
    return sorted({order["note"].strip() for order in orders} - {""})


def section(title: str) -> None:
    print(f"\n=== {title} ===")


def build_pipeline(example_orders: list[dict[str, Any]]) -> symgraph.SymbolicModel:
    """Record the pipeline on example values and compile it into a model."""
    orders = symgraph.CustomInput(example_orders, custom_name="orders")
    blocked = symgraph.CustomInput({"gus"}, custom_name="blocked")
    tax_rate = symgraph.CustomInput(0.08, custom_name="tax_rate")

    # Set algebra with operators.
    customers = symgraph.add_to_graph(customers_of, orders)
    active = customers - blocked
    turned_away = customers & blocked

    # Arbitrary functions, with symbolic values as positional and keyword arguments.
    valid = symgraph.add_to_graph(orders_by, orders, active, custom_name="valid_orders")
    totals = symgraph.add_to_graph(order_totals, valid, CATALOG)
    revenue = symgraph.add_to_graph(sum, totals.values())  # method call on a symbolic dict
    with_tax = revenue * (1 + tax_rate) / 100  # cents to currency units, tax included
    rounded = symgraph.add_to_graph(round, with_tax, 2, custom_name="revenue")

    # A tuple result is unpacked into two symbolic values; a symbolic bound method
    # (categories.get) is passed as a keyword argument.
    biggest_id, biggest_cents = symgraph.add_to_graph(
        max, totals.items(), key=operator.itemgetter(1), default=(None, 0)
    )
    categories = symgraph.add_to_graph(category_counts, valid, catalog=CATALOG)
    top_category = symgraph.add_to_graph(max, categories, key=categories.get, default="none")

    # String processing: method chains and formatting recorded as calls.
    notes = symgraph.add_to_graph(clean_notes, valid)
    notes_line = symgraph.add_to_graph("; ".join, notes).lower()
    headline = symgraph.add_to_graph(
        "{} orders from {} customers, top category {}".format,
        symgraph.add_to_graph(len, valid),
        symgraph.add_to_graph(len, active),
        top_category.upper(),
    )

    return symgraph.SymbolicModel(
        {"orders": orders, "blocked": blocked, "tax_rate": tax_rate},
        {
            "headline": headline,
            "revenue": rounded,
            "biggest_order": biggest_id,
            "biggest_cents": biggest_cents,
            "categories": categories,
            "turned_away": turned_away,
            "notes": notes_line,
        },
    )


def core_demo() -> None:
    """The core library on plain Python objects."""
    rng = random.Random(7)

    section("Recording on example data")
    example = make_orders(rng, 5)
    print(f"recording the pipeline on {len(example)} example orders, e.g. {example[0]}")
    model = build_pipeline(example)
    print(model)

    section("Summary")
    model.summary()

    section("Generated source")
    print(model.source)

    section("Replay on fresh data")
    fresh = make_orders(rng, 40)
    report = model(orders=fresh, blocked={"ada", "bo"}, tax_rate=0.2)
    for key, value in report.items():
        print(f"{key:>14}: {sorted(value) if isinstance(value, set) else value}")
    kept = [order for order in fresh if order["customer"] not in {"ada", "bo"}]
    expected_revenue = sum(CATALOG[item][1] for order in kept for item in order["items"])
    assert report["revenue"] == round(expected_revenue * (1 + 0.2) / 100, 2)
    assert report["turned_away"] == {"ada", "bo"} & {order["customer"] for order in fresh}

    section("Reference interpreter")
    batches = [make_orders(rng, n) for n in (1, 3, 10, 100)]
    for batch in batches:
        args = {"orders": batch, "blocked": {"cy"}, "tax_rate": 0.1}
        assert model(**args) == model.interpret(**args)
    print(f"the reference interpreter agrees with the generated code on {len(batches)} fresh batches")
    args = {"orders": batches[-1], "blocked": {"cy"}, "tax_rate": 0.1}

    section("Pickling")
    # The pipeline's functions are this script's, of __main__: pickle would store
    # them by name, which another program's __main__ lacks, so it refuses them.
    try:
        pickle.dumps(model)
    except pickle.PicklingError as error:
        print(f"pickle refuses the model: {str(error).partition('. ')[0]}")
    else:
        raise AssertionError("pickle stored functions of __main__ by name")
    try:
        import cloudpickle  # stores them by value; dask installs it
    except ImportError:
        print("cloudpickle, which would store them by value, is not installed")
    else:
        data = cloudpickle.dumps(model)
        restored = pickle.loads(data)
        assert restored(**args) == model(**args)
        print(f"cloudpickle stores it by value in {len(data)} bytes, and it replays the same after loading")


NUM_FEATURES = 16


def synthetic_sensors(rng: Any, rows: int) -> Any:
    """Readings of 16 sensors, each with its own offset and spread, plus a shared drift."""
    import numpy as np

    offsets = np.linspace(-5.0, 5.0, NUM_FEATURES)
    spreads = np.linspace(0.5, 3.0, NUM_FEATURES)
    drift = rng.normal(size=(rows, 1))
    return offsets + spreads * rng.normal(size=(rows, NUM_FEATURES)) + drift


def sensor_features(readings: Any, mean: Any, std: Any, projection: Any) -> dict[str, Any]:
    """Standardise, project onto a few directions, and reduce each row.

    Written once as plain numpy code: called on a symbolic array it records the
    pipeline, called on real data it is the reference the model is checked against.
    """
    import numpy as np

    standardised = (readings - mean) / std
    projected = standardised @ projection
    return {
        "projected": projected,
        "strength": np.linalg.norm(projected, axis=1),
        "peak": projected.max(axis=1),
    }


def numpy_demo() -> None:
    """symgraph_numpy: record a numpy pipeline on example data, replay it on numpy and dask arrays."""
    import numpy as np

    import symgraph_numpy as snp

    section("numpy: recording a feature pipeline")
    rng = np.random.default_rng(11)
    training = synthetic_sensors(rng, 5_000)
    mean, std = training.mean(axis=0), training.std(axis=0)  # constants, captured when recording
    projection = rng.normal(size=(NUM_FEATURES, 4)) / np.sqrt(NUM_FEATURES)  # a fixed random projection

    readings = snp.Input((None, NUM_FEATURES), custom_name="readings")  # any number of rows
    outputs = sensor_features(readings, mean, std, projection)
    model = snp.SymbolicModel(readings, outputs)
    shapes = {key: value.shape for key, value in outputs.items()}
    print(f"recorded on an example of shape {readings.v.shape}; output shapes {shapes}")

    section("numpy: summary")
    model.summary()

    section("numpy: replay on fresh arrays")
    for rows in (1, 10, 1_000):
        fresh = synthetic_sensors(rng, rows)
        got = model(fresh)
        expected = sensor_features(fresh, mean, std, projection)
        for key in expected:
            np.testing.assert_allclose(got[key], expected[key])
        print(f"{rows:>5} rows: same as eager numpy; mean strength {got['strength'].mean():.3f}")

    try:
        import dask.array as da
    except ModuleNotFoundError:
        print("\ndask is not installed; skipping the dask part (pip install 'symgraph-py[dask]')")
        return

    section("numpy: replay on a dask array")
    big = synthetic_sensors(rng, 200_000)
    chunked = da.from_array(big, chunks=(50_000, NUM_FEATURES))
    lazy = model(chunked)
    strength = lazy["strength"]
    assert isinstance(strength, da.Array)
    print(f"input: {chunked.shape} in {chunked.npartitions} chunks of {chunked.chunksize[0]} rows")
    print(
        f"result: a lazy dask.array.Array of shape {strength.shape} in {strength.npartitions} chunks, "
        "nothing computed yet"
    )
    (computed,) = da.compute(lazy)  # all three outputs in one pass over the chunks
    expected = sensor_features(big, mean, std, projection)
    for key in expected:
        np.testing.assert_allclose(computed[key], expected[key])
    print(f"computed: equal to eager numpy on the same {big.shape[0]} rows")


def build_toy_resnet() -> Any:
    """The toy ResNet of the Keras functional API guide, built symbolically."""
    from torch import nn

    from symgraph_torch import Input, SymbolicModel

    inputs = Input(shape=(3, 32, 32), custom_name="image")
    x = nn.Conv2d(inputs.C, 32, 3)(inputs)(nn.ReLU())
    x = nn.Conv2d(x.C, 64, 3)(x)(nn.ReLU())
    block_1_output = nn.MaxPool2d(3)(x)

    x = nn.Conv2d(block_1_output.C, 64, 3, padding=1)(block_1_output)(nn.ReLU())
    x = nn.Conv2d(x.C, 64, 3, padding=1)(x)(nn.ReLU())
    block_2_output = x + block_1_output

    x = nn.Conv2d(block_2_output.C, 64, 3, padding=1)(block_2_output)(nn.ReLU())
    x = nn.Conv2d(x.C, 64, 3, padding=1)(x)(nn.ReLU())
    block_3_output = x + block_2_output

    x = nn.Conv2d(block_3_output.C, 64, 3)(block_3_output)(nn.ReLU())
    x = nn.AvgPool2d(kernel_size=x.HW)(x)(nn.Flatten())  # the window is read from the shape: 7x7
    x = nn.Linear(x.features, 256)(x)(nn.ReLU())
    x = nn.Dropout(0.5)(x)
    outputs = nn.Linear(x.features, 10)(x)
    return SymbolicModel(inputs, outputs)


def build_toy_resnet_by_hand() -> Any:
    """The same network as a hand-written module: sizes worked out by hand, layers wired in forward."""
    import torch
    from torch import nn

    class ToyResNet(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.stem = nn.ModuleList([nn.Conv2d(3, 32, 3), nn.Conv2d(32, 64, 3)])
            self.pool = nn.MaxPool2d(3)
            self.blocks = nn.ModuleList([nn.Conv2d(64, 64, 3, padding=1) for _ in range(4)])
            self.last_conv = nn.Conv2d(64, 64, 3)
            self.global_pool = nn.AvgPool2d(7)  # 32 -> 30 -> 28 -> 9 -> 9 -> 7, by hand
            self.hidden = nn.Linear(64, 256)
            self.dropout = nn.Dropout(0.5)
            self.classifier = nn.Linear(256, 10)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            for conv in self.stem:
                x = torch.relu(conv(x))
            skip = self.pool(x)
            for first, second in (self.blocks[0:2], self.blocks[2:4]):
                skip = torch.relu(second(torch.relu(first(skip)))) + skip
            x = torch.relu(self.last_conv(skip))
            x = self.global_pool(x).flatten(1)
            x = self.dropout(torch.relu(self.hidden(x)))
            return self.classifier(x)

    return ToyResNet()


def synthetic_images(generator: Any, count: int) -> tuple[Any, Any]:
    """Noise images whose label (0, 1 or 2) is the colour channel that was made brighter."""
    import torch

    labels = torch.randint(0, 3, (count,), generator=generator)
    images = torch.randn(count, 3, 32, 32, generator=generator) * 0.5
    images[torch.arange(count), labels] += 1.0
    return images, labels


def torch_demo() -> None:
    """symgraph_torch: a Keras-style toy ResNet, trained for a few steps."""
    import torch
    import torch.nn.functional as F  # noqa: N812

    from symgraph_torch import model_tools

    section("PyTorch: the toy ResNet")
    torch.manual_seed(0)
    model = build_toy_resnet()
    torch.manual_seed(0)
    by_hand = build_toy_resnet_by_hand()
    print(f"built symbolically: input shape {model.input_shape}, output shape {model.output_shape}")
    print(f"{model_tools.get_parameter_count(model)} parameters, the same as the hand-written class")
    # Building draws no random numbers, so after the same seed both have the same weights.
    assert model_tools.models_have_corresponding_parameters(model, by_hand)
    model.eval()
    by_hand.eval()
    probe = torch.rand(4, 3, 32, 32)
    with torch.no_grad():
        assert torch.allclose(model(probe), by_hand(probe), atol=1e-6)
    print("same weights and outputs as the hand-written class built after the same torch.manual_seed")

    section("PyTorch: summary")
    model.summary()

    section("PyTorch: training on synthetic images")
    generator = torch.Generator().manual_seed(1)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    model.train()
    losses = []
    for step in range(1, 21):
        images, labels = synthetic_images(generator, 16)
        loss = F.cross_entropy(model(images), labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
        print(f"step {step:2d}: loss {loss.item():.4f}")
    assert losses[-1] < losses[0], losses
    print(f"the loss fell from {losses[0]:.4f} to {losses[-1]:.4f}")

    model.eval()
    images, labels = synthetic_images(generator, 64)
    with torch.no_grad():
        accuracy = (model(images).argmax(1) == labels).float().mean().item()
    print(f"accuracy on 64 fresh images: {accuracy:.0%} (chance: 33%)")


def main() -> None:
    core_demo()
    try:
        import numpy  # noqa: F401
    except ModuleNotFoundError:
        print("\nnumpy is not installed; skipping the symgraph_numpy part (pip install 'symgraph-py[numpy]')")
    else:
        numpy_demo()
    try:
        import torch  # noqa: F401
    except ModuleNotFoundError:
        print("\nPyTorch is not installed; skipping the symgraph_torch part (pip install 'symgraph-py[torch]')")
    else:
        torch_demo()


if __name__ == "__main__":
    main()
