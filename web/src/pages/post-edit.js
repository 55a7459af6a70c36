import { h } from '../lib/dom.js';

export const newPost = {
  path: '/posts/new',
  title: 'Write a post',
  auth: 'user',
  async render(main) {
    main.append(h('h1', null, 'Write a post'));
  },
};

export const editPost = {
  path: '/posts/:id/edit',
  title: 'Edit post',
  auth: 'user',
  async render(main) {
    main.append(h('h1', null, 'Edit post'));
  },
};
