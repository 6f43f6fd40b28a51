// Importing this registers every model family. One import line per family file.
export * from "./registry";
import "./preact_resnet";
import "./resnet_imagenet";
import "./efficient_resnet";
