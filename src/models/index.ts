// Importing this registers every model family. One import line per family file.
export * from "./registry";
import "./wide_resnet";
import "./resnext";
import "./densenet";
import "./mobilenet";
import "./efficientnet";
