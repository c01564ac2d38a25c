"""glow_tf: Glow (Kingma & Dhariwal, 2018) in TensorFlow 2 / Keras 3, trained with Horovod.

Horovod is not listed here: it must be compiled against the installed TensorFlow without build
isolation, which pip cannot express. `bash scripts/install.sh` does the whole install in order.
"""

from setuptools import find_packages, setup

setup(
    name='glow_tf',
    version='0.2.0',
    description='Glow: Generative Flow with Invertible 1x1 Convolutions, in TF2/Keras with Horovod',
    long_description=open('README.md').read() if __import__('os').path.exists('README.md') else '',
    long_description_content_type='text/markdown',
    python_requires='>=3.11,<3.12',
    packages=find_packages(include=['glow_tf', 'glow_tf.*']),
    install_requires=[
        'tensorflow-probability==0.25.0',
        'keras==3.15.1',
        'numpy>=1.26,<2.1',
        'pillow>=10',
        'tqdm>=4.66',
        'tensorboard>=2.18,<2.19',
        'flask==3.1.3',  # the face editor's app (demo.py)
        'waitress==3.0.2',  # ... and its production WSGI server
        'opencv-python-headless==4.10.0.84',  # face alignment; its Haar cascades ship in the wheel
        'PyYAML==6.0.3',  # train.py --config FILE.yaml
        'imageio-ffmpeg==0.8.1',  # MP4 exports: its wheel ships an ffmpeg binary
    ],
    extras_require={
        'cpu': ['tensorflow-cpu==2.18.1'],
        'gpu': ['tensorflow[and-cuda]==2.18.1'],
        'test': ['pytest>=8', 'scipy>=1.11', 'selenium==4.51.0', 'ruff==0.17.5'],
        'bench': ['matplotlib==3.10.9'],
    },
    entry_points={
        'console_scripts': [
            'glow-train=glow_tf.cli.train:main',
            'glow-sample=glow_tf.cli.sample:main',
            'glow-manipulate=glow_tf.cli.manipulate:main',
            'glow-demo=glow_tf.cli.demo:main',
            'glow-score=glow_tf.cli.score:main',
        ]
    },
    package_data={'glow_tf.editor': ['static/*']},
)
